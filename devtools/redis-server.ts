import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisServerArgs } from '../shared/redis-server.js';

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Polls `check` every `everyMs` until it returns true, or throws after `timeoutMs`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface TestRedis {
  port: number;
  url: string;
  dir: string;
  /** Stops the server (SIGTERM, or SIGKILL when `hard`). */
  stop(hard?: boolean): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
}

/** Servers started here and still running: stopped if this process exits without stopping them. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  // A test file that crashes (an uncaught exception) would otherwise leave its servers behind.
  for (const p of running) p.kill('SIGKILL');
});

/**
 * A private redis-server on a free port, so tests never touch a developer's Redis and fault tests can
 * stop and restart it. `appendonly` keeps data across restarts when asked.
 */
export interface StartRedisOptions {
  /** Keep an AOF, so data survives `stop()` and `start()` (default false). */
  appendonly?: boolean;
  /** AOF fsync policy (default `always`). */
  appendfsync?: 'always' | 'everysec';
  /** More redis-server arguments. */
  args?: string[];
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<TestRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cc-redis-'));
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = spawn(
      'redis-server',
      [
        ...redisServerArgs({
          port,
          dir,
          appendonly: opts.appendonly ?? false,
          appendfsync: opts.appendfsync ?? 'always',
        }),
        ...(opts.args ?? []),
      ],
      { stdio: 'ignore' },
    );
    const p = proc;
    running.add(p);
    p.once('exit', () => running.delete(p));
    const exited = new Promise<never>((_, reject) =>
      p.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`))),
    );
    exited.catch(() => undefined);
    await Promise.race([waitFor(() => canConnect(port), 10_000), exited]);
  };
  const stop = async (hard = false) => {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(hard ? 'SIGKILL' : 'SIGTERM');
    });
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    stop,
    start,
    async destroy() {
      await stop(true);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
