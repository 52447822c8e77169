/**
 * Connections before authentication: a connection that has not carried a request with a valid
 * signature is closed once idle for `unauthenticatedIdleMs` (its headers arriving slowly count as idle),
 * while an authenticated one keeps the 65 s keep-alive the SDKs' pools need; and one client address
 * holds at most `maxPerAddress` connections (more are closed at once), so idle or trickling sockets
 * from one place cannot use up the process's file descriptors. In all, the process holds at most
 * `maxConnections`: from nine tenths of it on, each new connection closes one idle connection (one
 * that never authenticated before one that did, the longest idle first), so a new client is still
 * answered near the descriptor limit; at the cap with nothing idle, the new connection is closed at once.
 * A connection whose first request has not arrived yet counts as idle (idle since it was accepted).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

const AUTHENTICATED = Symbol('authenticated');

/** Called by the authenticate middleware once a request on `socket` has a valid signature. */
export function markAuthenticated(socket: Socket | undefined): void {
  if (socket) (socket as Socket & { [AUTHENTICATED]?: boolean })[AUTHENTICATED] = true;
}

interface State {
  address: string;
  inFlight: number;
  idleSince: number;
}

export interface ConnectionGuardOptions {
  /** Idle time after which a connection that never authenticated is closed, ms; 0 = never. */
  unauthenticatedIdleMs: number;
  /** Connections one client address may hold at once; 0 = no limit. */
  maxPerAddress: number;
  /** Connections the process holds at once; 0 = no limit. */
  maxConnections?: number;
}

const isAuthenticated = (socket: Socket) =>
  (socket as Socket & { [AUTHENTICATED]?: boolean })[AUTHENTICATED] === true;

/** The idle connection to close first: never authenticated before authenticated, longest idle first. */
function evictionCandidate(sockets: Map<Socket, State>): Socket | undefined {
  let best: Socket | undefined;
  let bestKey: [number, number] = [2, Infinity];
  for (const [socket, s] of sockets) {
    if (s.inFlight > 0) continue;
    const key: [number, number] = [isAuthenticated(socket) ? 1 : 0, s.idleSince];
    if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1]))
      [best, bestKey] = [socket, key];
  }
  return best;
}

/** Watches `server`'s connections; returns a stop function. */
export function guardConnections(server: Server, o: ConnectionGuardOptions): () => void {
  const sockets = new Map<Socket, State>();
  const perAddress = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const n = (perAddress.get(address) ?? 0) + 1;
    if (o.maxPerAddress > 0 && n > o.maxPerAddress) {
      socket.destroy();
      return;
    }
    const cap = o.maxConnections ?? 0;
    if (cap > 0 && sockets.size + 1 > cap - Math.max(1, Math.floor(cap / 10))) {
      const idle = evictionCandidate(sockets);
      if (idle) {
        idle.destroy();
        sockets.delete(idle);
      } else if (sockets.size + 1 > cap) {
        socket.destroy();
        return;
      }
    }
    perAddress.set(address, n);
    sockets.set(socket, { address, inFlight: 0, idleSince: Date.now() });
    socket.once('close', () => {
      sockets.delete(socket);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
  server.on('request', (req, res) => {
    const s = sockets.get(req.socket);
    if (!s) return;
    s.inFlight += 1;
    res.once('close', () => {
      s.inFlight -= 1;
      s.idleSince = Date.now();
    });
  });
  if (o.unauthenticatedIdleMs <= 0) return () => undefined;
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const [socket, s] of sockets) {
        if (s.inFlight > 0 || isAuthenticated(socket)) continue;
        if (now - s.idleSince >= o.unauthenticatedIdleMs) socket.destroy();
      }
    },
    Math.max(50, Math.min(1000, o.unauthenticatedIdleMs / 4)),
  );
  sweep.unref();
  return () => clearInterval(sweep);
}
