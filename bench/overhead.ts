/**
 * CPU per Generate of everything that is not the key: the API and one worker in this process (keys
 * come pre-generated from a fixed set, so key generation costs nothing here), the load from a
 * separate client process, and the Redis server. For comparing changes to the per-certificate
 * overhead, not an absolute figure (tsx-transpiled, not dist/). Logs at info level to /dev/null.
 * Run: [KEY_MS=75] npx tsx bench/overhead.ts [generates=1500] [clients=8]
 */
import { fork } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { DEV_CREDENTIAL } from '../api/auth/credentials.js';
import { startApi, type ApiConfig } from '../api/server.js';
import { KeyVault } from '../shared/crypto/key-vault.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import type { KeySource, RsaKey } from '../worker/key-source.js';
import { startWorker } from '../worker/worker.js';
import { startRedis } from '../devtools/redis-server.js';
import { cpuTicks, redisServerPid } from './procs.js';

if (process.argv[2] === '--client') {
  const { SignedClient } = await import('./load.js');
  const [url, n, c] = [process.argv[3]!, Number(process.argv[4]), Number(process.argv[5])];
  const client = new SignedClient(url, c);
  let left = n;
  let failed = 0;
  const loop = async () => {
    while (left-- > 0) {
      const a = await client.post('/clientcertificates', { description: 'overhead' });
      if (a.status !== 201) failed++;
    }
  };
  await Promise.all(Array.from({ length: c }, loop));
  process.send!({ failed });
  process.exit(0);
}

const n = Number(process.argv[2] ?? 1500);
const clients = Number(process.argv[3] ?? 8);
const redis = await startRedis();
const redisPid = redisServerPid(redis.port)!;
const log = createLogger('info', 'overhead', pino.destination({ dest: '/dev/null', sync: false }));
const prefix = 'ovh';
const keys = new Keys(prefix);
const vault = new KeyVault([randomBytes(32).toString('base64')]);
const fixed: RsaKey[] = Array.from({ length: 8 }, () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicExponent: 0x10001,
  });
  return { publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string, privateKey };
});
let next = 0;
// A key "takes" keyMs of waiting (no CPU), so jobs flow at about the rate of the real service
// (concurrency 3 / 75 ms = 40 certificates/s): per-wakeup costs count as they do there.
const keyMs = Number(process.env.KEY_MS ?? 75);
const keySource: KeySource = {
  take: async () => {
    if (keyMs > 0) await new Promise((r) => setTimeout(r, keyMs));
    return fixed[next++ % fixed.length]!;
  },
  close: async () => {},
};
const wredis = createRedis(redis.url, patientOptions(), 'ovh-worker');
const worker = startWorker({ redis: wredis, keys, vault, keySource, log, concurrency: 3 });
const config: ApiConfig = {
  host: '127.0.0.1',
  port: 0,
  redisUrl: redis.url,
  redisPrefix: prefix,
  generateTimeoutMs: 20_000,
  defaultAccountId: '000000000000',
  defaultRegion: 'us-east-1',
  nodeEnv: 'production',
  credentialsFile: undefined,
  clientCertificateLimit: 0,
  rateLimitRps: 100_000,
  rateLimitBurst: 100_000,
  adminPassword: undefined,
};
const api = await startApi(config, log, {
  credentials: [{ ...DEV_CREDENTIAL, allow: [...DEV_CREDENTIAL.allow] }],
});
const mainTicks = () => cpuTicks(process.pid, true)!;
const run = (count: number) =>
  new Promise<number>((resolve, reject) => {
    const child = fork(
      fileURLToPath(import.meta.url),
      ['--client', api.url, String(count), String(clients)],
      {
        execArgv: ['--import', 'tsx'],
      },
    );
    child.on('message', (m: { failed: number }) => resolve(m.failed));
    child.on('error', reject);
  });
await run(200); // warm: JIT, scripts loaded, connections open
// Idle: what the service costs with nothing to do (heartbeats, watchdog, blocking reads), per second.
const idleS = Number(process.env.IDLE_S ?? 10);
const i0 = [cpuTicks(process.pid)!, cpuTicks(redisPid)!];
await new Promise((r) => setTimeout(r, idleS * 1000));
const idleMsPerS = {
  apiAndWorker: ((cpuTicks(process.pid)! - i0[0]!) * 10) / idleS,
  redis: ((cpuTicks(redisPid)! - i0[1]!) * 10) / idleS,
};
const m0 = mainTicks();
const a0 = cpuTicks(process.pid)!;
const r0 = cpuTicks(redisPid)!;
const t0 = performance.now();
const failed = await run(n);
const seconds = (performance.now() - t0) / 1000;
const per = (ticks: number) => Math.round(((ticks * 10) / n) * 100) / 100;
process.stdout.write(
  `${JSON.stringify({
    generates: n,
    failed,
    perSecond: Math.round(n / seconds),
    msPerGenerate: {
      apiAndWorkerMainThread: per(mainTicks() - m0),
      apiAndWorkerAllThreads: per(cpuTicks(process.pid)! - a0),
      redis: per(cpuTicks(redisPid)! - r0),
    },
    idleCpuMsPerSecond: idleMsPerS,
    loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  })}\n`,
);
await api.close(1000);
await worker.close(2000);
wredis.disconnect();
await redis.destroy();
process.exit(0);
