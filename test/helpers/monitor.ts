import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';

/** A Redis MONITOR stream: 'monitor' (time, args, source, db) for each command Redis runs, as ioredis emits it. */
export class Monitor extends EventEmitter {
  constructor(private readonly socket: Socket) {
    super();
  }
  disconnect(): void {
    this.socket.destroy();
  }
}

/**
 * MONITOR on a connection of its own, read line by line.
 *
 * Not ioredis's `monitor()`: it marks its connection "monitoring" only when MONITOR's OK has settled, a
 * microtask later, so a command of another client that arrives in the same read as the OK is parsed as
 * the reply to a command never sent ("Command queue state error", and `monitor()` rejects). A suite run
 * lost that race to another client's INFO; against a steady stream of commands it is lost nearly every
 * time, so asking again is no cure. Here the OK is the first line and every later line is a command.
 */
export async function startMonitor(url: string): Promise<Monitor> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port || 6379), hostname);
  const m = new Monitor(socket);
  socket.setEncoding('utf8');
  let buffered = '';
  let ok = false;
  return new Promise<Monitor>((resolve, reject) => {
    socket.once('connect', () => socket.write('MONITOR\r\n'));
    socket.on('error', (err) => (ok ? m.emit('error', err) : reject(err)));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!ok) {
          if (line !== '+OK') {
            socket.destroy();
            reject(new Error(`MONITOR answered ${line}`));
            return;
          }
          ok = true;
          resolve(m);
          continue;
        }
        // +1796642987.758483 [0 127.0.0.1:60320] "info" "server"; args parsed as ioredis does.
        const time = line.slice(1, line.indexOf(' '));
        const argIndex = line.indexOf('"');
        const [db, source] = line.slice(line.indexOf('[') + 1, line.indexOf(']')).split(' ');
        const args = line
          .slice(argIndex + 1, -1)
          .split('" "')
          .map((a) => a.replace(/\\"/g, '"'));
        m.emit('monitor', time, args, source, db);
      }
    });
  });
}
