/**
 * `npm start`: the API and a worker pool in one command, for local use.
 *
 * Redis: REDIS_URL, REDIS_CLUSTER_NODES or REDIS_SENTINELS when given; otherwise 127.0.0.1:6379 when something answers there; otherwise a
 * private `redis-server` (AOF on, data in EMBEDDED_REDIS_DIR) on EMBEDDED_REDIS_PORT, stopped on exit.
 * The API and each worker run as child processes, restarted if they die, stopped on SIGINT/SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigOrExit } from '../shared/config.js';
import { createServiceLogger } from '../shared/logger.js';
import { redisServerArgs } from '../shared/redis-server.js';
import { EXIT_CONFIG } from '../shared/startup-errors.js';
import { requiredThreadpoolSize } from '../worker/threadpool.js';

const config = loadConfigOrExit();
const log = createServiceLogger(config, 'launcher');
const children = new Set<ChildProcess>();
let stopping = false;
let redisProc: ChildProcess | undefined;

/** Sends PING and resolves true on +PONG (or an auth error: something Redis-like is there). */
function pingRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((done) => {
    const sock = createConnection({ host, port });
    const finish = (ok: boolean) => {
      sock.destroy();
      done(ok);
    };
    sock.setTimeout(timeoutMs, () => finish(false));
    sock.once('error', () => finish(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => finish(/^(\+PONG|-NOAUTH)/.test(d.toString())));
  });
}

async function chooseRedis(): Promise<string | undefined> {
  // A configured Redis (URL, Cluster or Sentinel) is used as it is: never a local one instead.
  if (config.redisUrl || config.redisClusterNodes || config.redisSentinels) return config.redisUrl;
  if (await pingRedis('127.0.0.1', 6379)) {
    log.info('using the Redis answering on 127.0.0.1:6379 (set REDIS_URL to choose another)');
    return 'redis://127.0.0.1:6379';
  }
  const port = config.embeddedRedisPort;
  const url = `redis://127.0.0.1:${port}`;
  if (await pingRedis('127.0.0.1', port)) {
    log.info({ url }, 'using the embedded Redis that is already running');
    return url;
  }
  if (config.embeddedRedis === 'never' || spawnSync('redis-server', ['--version']).error) {
    log.fatal(
      'No Redis: nothing answers on 127.0.0.1:6379 and there is no redis-server binary on PATH. ' +
        'Start one with `docker compose -f docker-compose.yml -f docker-compose.redis-port.yml up -d redis` ' +
        '(it listens on 127.0.0.1:6379), ' +
        'or install it (Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`), or set REDIS_URL.',
    );
    process.exit(1);
  }
  const dir = resolve(config.embeddedRedisDir);
  mkdirSync(dir, { recursive: true });
  redisProc = spawn(
    'redis-server',
    redisServerArgs({ port, dir, appendonly: true, appendfsync: 'everysec' }),
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  redisProc.once('exit', (code) => {
    if (!stopping) {
      log.fatal({ code }, 'embedded redis-server exited');
      void shutdown(1);
    }
  });
  for (let i = 0; i < 100 && !(await pingRedis('127.0.0.1', port)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  log.warn(
    { url, dir },
    'started an embedded redis-server (AOF on) for local use; set REDIS_URL for a real deployment',
  );
  return url;
}

const BUILT = import.meta.url.endsWith('.js');

/**
 * How to run a service: the launcher built into dist/ (`npm start`) starts the built JavaScript beside
 * it; run from source (`tsx scripts/start.ts`) it starts the TypeScript through tsx's loader.
 */
function entryArgs(script: 'api/main' | 'worker/main'): string[] {
  if (BUILT) return ['--enable-source-maps', fileURLToPath(new URL(`../${script}.js`, import.meta.url))];
  return ['--import', 'tsx', fileURLToPath(new URL(`../${script}.ts`, import.meta.url))];
}

function run(name: string, script: 'api/main' | 'worker/main', env: NodeJS.ProcessEnv): void {
  // Own process group: a terminal's Ctrl-C reaches the launcher only, which then stops each child once.
  // The IPC channel tells a child when the launcher is gone, so children never outlive it.
  const child = spawn(process.execPath, entryArgs(script), {
    env,
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  children.add(child);
  const started = Date.now();
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (stopping) return;
    if (code === EXIT_CONFIG) {
      // Its configuration is wrong (it said why on stderr): restarting would only repeat that.
      log.fatal({ name, code }, 'child process refused its configuration: stopping');
      void shutdown(1);
      return;
    }
    // A crash loop backs off; a process that ran a while is restarted at once.
    const delay = Date.now() - started < 5000 ? 2000 : 0;
    log.error({ name, code, signal, restartInMs: delay }, 'child process exited: restarting');
    setTimeout(() => !stopping && run(name, script, env), delay);
  });
}

async function shutdown(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  const deadline = Date.now() + config.generateTimeoutMs + 15_000;
  while (children.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const c of children) c.kill('SIGKILL');
  if (redisProc && redisProc.exitCode === null) {
    const p = redisProc;
    await new Promise<void>((r) => {
      p.once('exit', () => r());
      p.kill('SIGTERM');
    });
  }
  process.exit(code);
}

let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (++signals > 1) {
      for (const c of children) c.kill('SIGKILL');
      redisProc?.kill('SIGKILL');
      process.exit(1);
    }
    void shutdown(0);
  });
}

const redisUrl = await chooseRedis();
const env: NodeJS.ProcessEnv = { ...process.env };
if (redisUrl) env.REDIS_URL = redisUrl;
// Key generation runs on libuv's pool; it must be sized before the worker process starts.
const workerEnv: NodeJS.ProcessEnv = {
  ...env,
  UV_THREADPOOL_SIZE:
    process.env.UV_THREADPOOL_SIZE ?? String(requiredThreadpoolSize(config.workerConcurrency)),
};
run('api', 'api/main', env);
for (let i = 0; i < config.workerProcesses; i++) {
  // Each worker's probe server (WORKER_HEALTH_PORT) takes the next port, so they never collide.
  const port = config.workerHealthPort > 0 ? { WORKER_HEALTH_PORT: String(config.workerHealthPort + i) } : {};
  run(`worker-${i + 1}`, 'worker/main', { ...workerEnv, ...port });
}
log.info(
  {
    url: `http://${config.host}:${config.port}`,
    workers: config.workerProcesses,
    cores: availableParallelism(),
  },
  'service starting',
);
