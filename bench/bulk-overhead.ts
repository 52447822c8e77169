/**
 * CPU per bulk certificate of everything that is not the key, process by process: one worker in this
 * process (keys from a fixed set, each "taking" KEY_MS of waiting and no CPU, so jobs flow at about the
 * real service's rate), an idle API process (it still reads the queue's events), `npm run bulk` as its
 * own process, and the Redis server. Measured over a window in the middle of the batch, so start-up
 * and the tail are left out. For comparing changes to the bulk path, not an absolute figure
 * (tsx-transpiled, not dist/). Logs at info level to /dev/null.
 * Run: [KEY_MS=75] [CONCURRENCY=3] npx tsx bench/bulk-overhead.ts [certificates=3000] [window-s=40]
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { KeyVault } from '../shared/crypto/key-vault.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import type { KeySource, RsaKey } from '../worker/key-source.js';
import { startWorker } from '../worker/worker.js';
import { nodeArgs } from '../devtools/entry.js';
import { startRedis } from '../devtools/redis-server.js';
import { cpuTicks, redisServerPid } from './procs.js';

const n = Number(process.argv[2] ?? 3000);
const windowS = Number(process.argv[3] ?? 40);
const keyMs = Number(process.env.KEY_MS ?? 75);
const concurrency = Number(process.env.CONCURRENCY ?? 3);
const redis = await startRedis();
const redisPid = redisServerPid(redis.port)!;
const log = createLogger('info', 'bulk-overhead', pino.destination({ dest: '/dev/null', sync: false }));
const prefix = 'bov';
const keys = new Keys(prefix);
const masterKey = randomBytes(32).toString('base64');
const vault = new KeyVault([masterKey]);
const fixed: RsaKey[] = Array.from({ length: 8 }, () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicExponent: 0x10001,
  });
  return { publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string, privateKey };
});
let next = 0;
const keySource: KeySource = {
  take: async () => {
    if (keyMs > 0) await new Promise((r) => setTimeout(r, keyMs));
    return fixed[next++ % fixed.length]!;
  },
  close: async () => {},
};
const wredis = createRedis(redis.url, patientOptions(), 'bov-worker');
const worker = startWorker({ redis: wredis, keys, vault, keySource, log, concurrency });

const dir = mkdtempSync(join(tmpdir(), 'bulk-overhead-'));
const env = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REDIS_'))),
  REDIS_URL: redis.url,
  REDIS_PREFIX: prefix,
  MASTER_KEY: masterKey,
  LOG_LEVEL: 'info',
  CLIENT_CERTIFICATE_LIMIT: '0',
};
const api = spawn(process.execPath, nodeArgs('api/main.ts'), {
  env: { ...env, PORT: '0', HOST: '127.0.0.1' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const out = join(dir, 'out.ndjson');
const bulk = spawn(process.execPath, [...nodeArgs('scripts/bulk.ts'), '--count', String(n), '--out', out], {
  env,
  stdio: ['ignore', 'ignore', 'pipe'],
});
let bulkErr = '';
bulk.stderr.on('data', (d: Buffer) => (bulkErr += d.toString()));
const bulkDone = new Promise<number | null>((resolve) => bulk.on('close', resolve));

const lines = () => {
  try {
    return readFileSync(out, 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Warm: start-up, JIT and the first chunks out of the way.
while (lines() < Math.min(300, n / 5)) await sleep(200);
const snap = () => ({
  t: performance.now(),
  done: lines(),
  workerMain: cpuTicks(process.pid, true)!,
  workerAll: cpuTicks(process.pid)!,
  api: cpuTicks(api.pid!)!,
  bulk: cpuTicks(bulk.pid!)!,
  redis: cpuTicks(redisPid)!,
});
const a = snap();
await sleep(windowS * 1000);
const b = snap();
const certs = b.done - a.done;
const per = (k: 'workerMain' | 'workerAll' | 'api' | 'bulk' | 'redis') =>
  Math.round((((b[k] - a[k]) * 10) / certs) * 100) / 100;
const figures = {
  certificates: certs,
  perSecond: Math.round((certs / ((b.t - a.t) / 1000)) * 10) / 10,
  msPerCertificate: {
    workerMainThread: per('workerMain'),
    workerAllThreads: per('workerAll'),
    api: per('api'),
    bulkCli: per('bulk'),
    redis: per('redis'),
    all: Math.round((per('workerAll') + per('api') + per('bulk') + per('redis')) * 100) / 100,
  },
  loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
};
process.stdout.write(`${JSON.stringify(figures)}\n`);
bulk.kill('SIGINT');
const code = await bulkDone;
if (code !== 1 && code !== 0) process.stderr.write(bulkErr);
api.kill('SIGTERM');
await worker.close(2000);
wredis.disconnect();
await redis.destroy();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
