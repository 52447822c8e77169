/**
 * The redis-server command line both the launcher (`npm start`'s embedded Redis, scripts/start.ts) and
 * the development tools (devtools/redis-server.ts: tests, bench, soak) start Redis with.
 */
export interface RedisServerOptions {
  port: number;
  /** Working directory: AOF files live here. */
  dir: string;
  /** Keep an append-only file, so data survives a restart. */
  appendonly: boolean;
  /** `always` (every write on disk before the answer) or `everysec` (at most one second lost on a crash). */
  appendfsync: 'always' | 'everysec';
}

/** Arguments of `redis-server`: loopback only, no RDB snapshots, and never evict (a lost key is a lost job). */
export function redisServerArgs(o: RedisServerOptions): string[] {
  return [
    '--port',
    String(o.port),
    '--bind',
    '127.0.0.1',
    '--dir',
    o.dir,
    '--save',
    '',
    '--appendonly',
    o.appendonly ? 'yes' : 'no',
    '--appendfsync',
    o.appendfsync,
    '--maxmemory-policy',
    'noeviction',
  ];
}
