/**
 * `npm run bench`: how fast the service issues certificates on this machine, against the machine's
 * own bound, measured in one run. docs/performance.md says what each figure means.
 *
 *   npm run bench                    # full run, ~7 min: builds dist/, starts redis-server, the API and workers
 *   npm run bench -- --quick         # smoke check, ~2 min (too few keys to judge the throughput targets)
 *   npm run bench -- --url http://127.0.0.1:8080   # a running service (no RSS, no scaling)
 */
import { spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  APIGatewayClient,
  GenerateClientCertificateCommand,
  type GenerateClientCertificateCommandOutput,
} from '@aws-sdk/client-api-gateway';
import { DEFAULT_KEY_POOL_SIZE, defaultWorkerConcurrency, loadConfig } from '../shared/config.js';
import { Keys } from '../shared/keys.js';
import { createQueue } from '../shared/queue.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { requiredThreadpoolSize } from '../worker/threadpool.js';
import { freePort, startRedis, type TestRedis } from '../devtools/redis-server.js';
import { closedLoop, CREDENTIALS, percentiles, REGION, SignedClient } from './load.js';
import {
  CpuWindow,
  procStatusKb,
  redisServerPid,
  RssSampler,
  sleep,
  startProcess,
  waitQuiet,
  type ServiceProcess,
} from './procs.js';
import {
  againstRaw,
  meanRaw,
  ratioToRaw,
  round,
  type LoopDelay,
  type RawRun,
  type SustainedRun,
} from './figures.js';
import { measureMixed, mixedCredentials } from './mixed.js';
import { table } from './report.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** BullMQ renews a job's lock every lockDuration / 2: the worker's event loop must never stall that long. */
const LOCK_RENEW_MS = lockRenewMs();
const STATS_INTERVAL_MS = 2_000;
const BURST_IDLE_MS = 8_000;
const BURST_REQUESTS = 4;

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    url: { type: 'string' },
    workers: { type: 'string' },
    'worker-concurrency': { type: 'string' },
    'key-pool-size': { type: 'string' },
    clients: { type: 'string' },
    duration: { type: 'string' },
    'no-scaling': { type: 'boolean', default: false },
    'no-mixed': { type: 'boolean', default: false },
    phase: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
    out: { type: 'string', default: join(ROOT, 'bench/results/latest.json') },
    'keep-logs': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  out(`npm run bench -- [--quick] [--url URL] [--workers N] [--worker-concurrency N] [--key-pool-size N]
                   [--clients N] [--duration SECONDS] [--no-scaling] [--no-mixed] [--log-level LEVEL] [--out FILE] [--keep-logs]
                   [--phase preauth|sustained|mixed]   (only the service's start and that phase;
                                                        mixed measures the raw bound before and after each scenario)\n`);
  process.exit(0);
}

const cores = availableParallelism();
const quick = flags.quick;
const num = (v: string | undefined, def: number, name: string) => {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
};
const cfg = {
  workers: num(flags.workers, 1, 'workers'),
  workerConcurrency: num(flags['worker-concurrency'], defaultWorkerConcurrency(cores), 'worker-concurrency'),
  keyPoolSize: num(flags['key-pool-size'], quick ? 8 : DEFAULT_KEY_POOL_SIZE, 'key-pool-size'),
  // RSA keygen time varies a lot from key to key (coefficient of variation ~0.5): the longer the
  // windows, the more keys each figure averages over (45 s ≈ 500 keys ≈ 2.3 % standard error).
  sustainedS: num(flags.duration, quick ? 8 : 45, 'duration'),
  rawS: quick ? 5 : 20,
  getS: quick ? 3 : 10,
  getClients: 32,
  preAuthS: quick ? 4 : 10,
  preAuthConnections: 16,
  burstRounds: quick ? 1 : 3,
  // One process at concurrency 1 issues ~6 certificates/s: 45 s is ~270 keys, ~3 % standard error.
  scalingS: quick ? 8 : 45,
  scaling: !flags['no-scaling'] && !flags.url,
  // Needs its own accounts (CREDENTIALS_FILE) and the bulk CLI on the service's Redis: local only.
  mixed: !flags['no-mixed'] && !flags.url,
  logLevel: flags['log-level'],
};
const clients = num(flags.clients, 2 * cfg.workers * cfg.workerConcurrency + 2, 'clients');

function lockRenewMs(): number {
  try {
    return loadConfig(process.env).workerLockDurationMs / 2;
  } catch {
    return loadConfig({}).workerLockDurationMs / 2;
  }
}

function out(s: string) {
  process.stdout.write(s);
}
function step(s: string) {
  out(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
}

// ---------------------------------------------------------------------------------------------
// Processes: everything started here is stopped on exit, whatever happens.

/**
 * Everything one bench run has started or holds, passed explicitly to whatever starts, stops or
 * samples processes; {@link cleanup} stops all of it on exit, whatever happens.
 */
interface RunContext {
  /** Processes started and not yet stopped. */
  started: ServiceProcess[];
  redis: TestRedis | undefined;
  logDir: string;
  sampler: RssSampler;
  /** Service processes held with SIGSTOP while the raw bound is measured (see measureRaw). */
  frozen: number[];
  /** Environment of the service processes. */
  env: NodeJS.ProcessEnv;
  /** A first SIGINT/SIGTERM came: the next exits at once. */
  interrupted: boolean;
}

function newRunContext(): RunContext {
  return {
    started: [],
    redis: undefined,
    logDir: mkdtempSync(join(tmpdir(), 'cc-bench-')),
    sampler: new RssSampler(),
    frozen: [],
    env: {},
    interrupted: false,
  };
}

function thaw(ctx: RunContext) {
  for (const pid of ctx.frozen) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  ctx.frozen = [];
}

async function cleanup(ctx: RunContext) {
  thaw(ctx);
  ctx.sampler.stop();
  await Promise.all(ctx.started.map((p) => p.stop(5000)));
  await ctx.redis?.destroy();
}

function stopOnSignals(ctx: RunContext) {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (ctx.interrupted) process.exit(1);
      ctx.interrupted = true;
      step(`${sig}: stopping the processes the bench started`);
      void cleanup(ctx).finally(() => process.exit(130));
    });
  }
}

function track(ctx: RunContext, p: ServiceProcess, sample = true): ServiceProcess {
  ctx.started.push(p);
  if (sample) ctx.sampler.track(p.name, p.pid);
  return p;
}

function startWorkerProcess(ctx: RunContext, index: number, concurrency: number): ServiceProcess {
  const p = startProcess(
    `worker${index}`,
    'worker/main',
    // As `npm start` does: with a big enough libuv pool the worker runs in this pid (it would otherwise
    // relaunch itself as a child, whose CPU and memory this bench would not see).
    {
      ...ctx.env,
      WORKER_CONCURRENCY: String(concurrency),
      UV_THREADPOOL_SIZE: String(requiredThreadpoolSize(concurrency)),
    },
    join(ctx.logDir, `worker${index}-${Date.now()}.log`),
  );
  return track(ctx, p);
}

async function stopProcess(ctx: RunContext, p: ServiceProcess) {
  await p.stop();
  ctx.sampler.untrack(p.name);
  ctx.started.splice(ctx.started.indexOf(p), 1);
}

/** The processes whose CPU is ours: API, workers, redis-server and the bench itself. */
function ourPids(ctx: RunContext): Record<string, number> {
  const pids: Record<string, number> = { bench: process.pid };
  for (const p of ctx.started) pids[p.name] = p.pid;
  const r = ctx.redis ? redisServerPid(ctx.redis.port) : undefined;
  if (r) pids.redis = r;
  return pids;
}

// ---------------------------------------------------------------------------------------------
// Measurements.

/**
 * The machine's bound: one process per core doing nothing but native RSA-2048 generation. Also the
 * CPU cost of one key (keys per CPU-second), which outside load does not change.
 */
interface RawProcess {
  n: number;
  /** Sum and sum of squares of the keys' generation times, ms. */
  sum: number;
  sumSq: number;
  ms: number;
  cpuMs: number;
}

async function rawBound(seconds: number, processes = cores): Promise<RawRun> {
  const script = `
    const { generateKeyPairSync } = require('node:crypto');
    const end = Date.now() + ${seconds * 1000};
    const t = performance.now();
    let n = 0, sum = 0, sumSq = 0;
    while (Date.now() < end) {
      const k = performance.now();
      generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
      const d = performance.now() - k;
      n++; sum += d; sumSq += d * d;
    }
    const cpu = process.cpuUsage();
    process.stdout.write(JSON.stringify({ n, sum, sumSq, ms: performance.now() - t, cpuMs: (cpu.user + cpu.system) / 1000 }));`;
  const cpuWindow = new CpuWindow({});
  const runs = await Promise.all(
    Array.from(
      { length: processes },
      () =>
        new Promise<RawProcess>((resolve, reject) => {
          const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
          let text = '';
          p.stdout.on('data', (d: Buffer) => (text += d.toString()));
          p.on('exit', (code) =>
            code === 0 ? resolve(JSON.parse(text) as RawProcess) : reject(new Error(`exit ${code}`)),
          );
        }),
    ),
  );
  const machine = cpuWindow.end();
  const keys = runs.reduce((s, r) => s + r.n, 0);
  const keysPerSecond = runs.reduce((s, r) => s + r.n / (r.ms / 1000), 0);
  const cpuSeconds = runs.reduce((s, r) => s + r.cpuMs / 1000, 0);
  const mean = runs.reduce((s, r) => s + r.sum, 0) / keys;
  const variance = runs.reduce((s, r) => s + r.sumSq, 0) / keys - mean * mean;
  return {
    processes,
    seconds,
    keys,
    /** How much one key's generation time varies: standard deviation / mean. */
    keyTimeCv: round(Math.sqrt(Math.max(0, variance)) / mean),
    keysPerSecond: round(keysPerSecond),
    keysPerCpuSecond: round(keys / cpuSeconds),
    /** Everything busy on the machine besides the key generators, in cores. */
    otherCores: round(Math.max(0, machine.otherCores - cpuSeconds / machine.seconds)),
  };
}

function sdkClient(url: string, maxSockets: number) {
  return new APIGatewayClient({
    endpoint: url,
    region: REGION,
    credentials: CREDENTIALS,
    maxAttempts: 1, // a retry would hide a failure and blur latencies
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets }), requestTimeout: 120_000 },
  });
}

function errorKind(err: unknown): string {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return `${e.$metadata?.httpStatusCode ?? 'network'} ${e.name ?? 'Error'}`;
}

/** One GenerateClientCertificate through the AWS SDK; checks the answer is a self-signed certificate. */
async function generateOnce(sdk: APIGatewayClient): Promise<GenerateClientCertificateCommandOutput> {
  let r: GenerateClientCertificateCommandOutput;
  try {
    r = await sdk.send(new GenerateClientCertificateCommand({ description: 'bench' }));
  } catch (err) {
    throw new Error(errorKind(err), { cause: err });
  }
  const x = new X509Certificate(r.pemEncodedCertificate ?? '');
  if (!x.verify(x.publicKey)) throw new Error('200 certificate does not verify');
  return r;
}

/**
 * One GenerateClientCertificate through the lean signed client (same SigV4 signer as the SDK, less
 * client CPU: on a 2-core machine the load generator shares the cores with the service).
 */
async function generateLean(client: SignedClient): Promise<void> {
  const a = await client.post('/clientcertificates', { description: 'bench' });
  if (a.status !== 201) {
    let type = '';
    try {
      type = (JSON.parse(a.body) as { message?: string }).message?.slice(0, 60) ?? '';
    } catch {
      // not JSON
    }
    throw new Error(`${a.status} ${type}`);
  }
  const x = new X509Certificate(
    (JSON.parse(a.body) as { pemEncodedCertificate: string }).pemEncodedCertificate,
  );
  if (!x.verify(x.publicKey)) throw new Error('201 certificate does not verify');
}

/** Worker event-loop delay (ms beyond the sampling period) from the runtime-stats lines inside a window. */
function workerLoopDelay(workers: ServiceProcess[], from: number, to: number): LoopDelay {
  let p99 = 0;
  let max = 0;
  let samples = 0;
  for (const w of workers) {
    for (const line of readFileSync(w.logFile, 'utf8').split('\n')) {
      if (!line.includes('"runtime stats"')) continue;
      const l = JSON.parse(line) as { time: string; eventLoopDelayMs: { p99: number; max: number } };
      const t = Date.parse(l.time);
      // A line covers the interval before it: count only intervals fully inside the window.
      if (t - STATS_INTERVAL_MS < from || t > to) continue;
      samples++;
      p99 = Math.max(p99, l.eventLoopDelayMs.p99);
      max = Math.max(max, l.eventLoopDelayMs.max);
    }
  }
  return { p99Ms: p99, maxMs: max, intervals: samples };
}

async function waitHealthy(client: SignedClient, workers: number, timeoutMs = 60_000) {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    try {
      const r = await client.get('/health');
      last = `${r.status} ${r.body}`;
      const body = JSON.parse(r.body) as { workers?: number };
      if (r.status === 200 && (body.workers ?? 0) >= workers) return;
    } catch (err) {
      last = String(err);
    }
    await sleep(200);
  }
  throw new Error(`service not healthy with ${workers} worker(s) within ${timeoutMs} ms: ${last}`);
}

async function sustained(
  ctx: RunContext,
  client: SignedClient,
  nClients: number,
  seconds: number,
  pooledKeys: number,
  workers: ServiceProcess[],
): Promise<SustainedRun> {
  let cpuWindow: CpuWindow | undefined;
  let cpu: ReturnType<CpuWindow['end']> | undefined;
  const r = await closedLoop({
    onWindow: (edge) => {
      if (edge === 'start') cpuWindow = new CpuWindow(ourPids(ctx));
      else cpu = cpuWindow?.end();
    },
    clients: nClients,
    durationMs: seconds * 1000,
    // Pooled keys cost no generation: the window opens once they are spent, so it measures the
    // steady state, not a free head start.
    warmupRequests: pooledKeys + 2 * nClients,
    minWarmupMs: 3000,
    send: () => generateLean(client),
  });
  const { windowStart, windowEnd, ...rest } = r;
  const run: SustainedRun = { ...rest, clients: nClients };
  if (cpu && !flags.url) run.cpu = cpu;
  if (workers.length) {
    await sleep(STATS_INTERVAL_MS + 500); // the stats line covering the window's end
    run.workerLoopDelay = workerLoopDelay(workers, windowStart, windowEnd);
  }
  return run;
}

async function getThroughput(client: SignedClient, path: string, seconds: number, serverPid?: number) {
  let cpuWindow: CpuWindow | undefined;
  let cpu: ReturnType<CpuWindow['end']> | undefined;
  const r = await closedLoop({
    clients: cfg.getClients,
    durationMs: seconds * 1000,
    minWarmupMs: quick ? 2000 : 3000, // the JIT: the sustained runs never took this path
    onWindow: (edge) => {
      const pids: Record<string, number> = { bench: process.pid };
      if (serverPid) pids.server = serverPid;
      if (edge === 'start') cpuWindow = new CpuWindow(pids);
      else cpu = cpuWindow?.end();
    },
    send: async () => {
      const a = await client.get(path);
      if (a.status !== 200) throw new Error(`${a.status}`);
    },
  });
  const serverCpuMsPerRequest =
    cpu?.byProcess.server !== undefined && r.ok ? round((cpu.byProcess.server * 1000) / r.ok, 3) : undefined;
  return {
    perSecond: r.perSecond,
    ok: r.ok,
    errors: r.errors,
    errorKinds: r.errorKinds,
    latencyMs: r.latencyMs,
    serverCpuMsPerRequest,
    cpu,
  };
}

// ---------------------------------------------------------------------------------------------

/** The service under measurement and the clients that talk to it. */
interface Service {
  url: string;
  /** Unset with --url (a running service). */
  api: ServiceProcess | undefined;
  workers: ServiceProcess[];
  client: SignedClient;
  sdk: APIGatewayClient;
  loadClient: SignedClient;
}

type Results = Record<string, unknown>;
type MeanRaw = ReturnType<typeof meanRaw>;

/** Phase 1: Redis, the API and the workers (unless --url), healthy with full key pools. */
async function startService(ctx: RunContext): Promise<Service> {
  let url = flags.url;
  let api: ServiceProcess | undefined;
  const workers: ServiceProcess[] = [];
  if (!url) {
    // A replicated Redis named in the environment (REDIS_SENTINELS or REDIS_CLUSTER_NODES, with their
    // passwords) is used as it is, under the bench's own prefix; otherwise a private redis-server. An
    // external Redis's CPU is not counted among ours.
    const external = Boolean(process.env.REDIS_SENTINELS || process.env.REDIS_CLUSTER_NODES);
    if (!external) ctx.redis = await startRedis();
    const port = await freePort();
    ctx.env = {
      ...process.env,
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      ...(ctx.redis ? { REDIS_URL: ctx.redis.url } : {}),
      REDIS_PREFIX: 'bench',
      MASTER_KEY: randomBytes(32).toString('base64'),
      LOG_LEVEL: cfg.logLevel,
      KEY_POOL_SIZE: String(cfg.keyPoolSize),
      RUNTIME_STATS_INTERVAL_MS: String(STATS_INTERVAL_MS),
      GENERATE_TIMEOUT_MS: '60000',
      // The bench issues thousands of certificates from one account: AWS's quotas would stop it.
      CLIENT_CERTIFICATE_LIMIT: '0',
      RATE_LIMIT_RPS: '0',
      EMBEDDED_REDIS: 'never',
      // The dev credential (every phase) and the mixed phase's accounts.
      CREDENTIALS_FILE: credentialsFile(ctx.logDir),
    };
    api = track(
      ctx,
      startProcess('api', 'api/main', { ...ctx.env, PORT: String(port) }, join(ctx.logDir, 'api.log')),
    );
    for (let i = 1; i <= cfg.workers; i++) workers.push(startWorkerProcess(ctx, i, cfg.workerConcurrency));
    url = `http://127.0.0.1:${port}`;
  }
  const svc: Service = {
    url,
    api,
    workers,
    client: new SignedClient(url),
    sdk: sdkClient(url, 8),
    loadClient: new SignedClient(url, Math.max(64, clients)),
  };
  step(`service at ${url}; waiting for ${cfg.workers} worker(s) and full key pools`);
  await waitHealthy(svc.client, flags.url ? 1 : cfg.workers);
  if (workers.length) await waitQuiet(workerPids(svc));
  ctx.sampler.takePeaks();
  return svc;
}

const workerPids = (svc: Service) => svc.workers.map((w) => w.pid);

function credentialsFile(dir: string): string {
  const file = join(dir, 'credentials.json');
  const dev = { accessKeyId: 'test', secretAccessKey: 'test', accountId: '000000000000' };
  writeFileSync(file, JSON.stringify([dev, ...mixedCredentials()]), { mode: 0o600 });
  return file;
}

/**
 * Phase 5: the mixed phase (bench/mixed.ts): a polite account beside a bulk batch, a flooding account
 * and both. Between scenarios whatever is left in the queue is dropped, as with the bench's own Redis.
 */
async function runMixed(ctx: RunContext, svc: Service, results: Results, raw: MeanRaw) {
  const config = loadConfig(ctx.env);
  const redis = createRedis(config, patientOptions(), 'bench-mixed');
  redis.on('error', () => undefined);
  const queue = createQueue(redis, new Keys(config.redisPrefix));
  const drain = async () => {
    await queue.drain(true);
    const until = Date.now() + 120_000;
    for (;;) {
      const c = await queue.getJobCounts('waiting', 'prioritized', 'active');
      if ((c.waiting ?? 0) + (c.prioritized ?? 0) + (c.active ?? 0) === 0) break;
      if (Date.now() > until) throw new Error(`queue not drained: ${JSON.stringify(c)}`);
      await queue.drain(true);
      await sleep(200);
    }
    if (svc.workers.length) await waitQuiet(workerPids(svc));
  };
  try {
    if (svc.workers.length) await waitQuiet(workerPids(svc));
    results.mixed = await measureMixed({
      url: svc.url,
      env: ctx.env,
      dir: ctx.logDir,
      rawKeysPerSecond: raw.keysPerSecond,
      rawKeysPerCpuSecond: raw.keysPerCpuSecond,
      // Each scenario against the bound right before and after it (the queue is drained between).
      measureRaw: () => measureRaw(ctx, svc),
      quick,
      step,
      drain,
      pids: flags.url ? undefined : () => ourPids(ctx),
    });
  } finally {
    await queue.close().catch(() => undefined);
    redis.disconnect();
  }
  ctx.sampler.takePeaks();
}

/**
 * The raw bound with the service idle. The idle service (timers, heartbeats, Redis's cron) would take
 * ~0.015 core from the bound: its processes are held still meanwhile. None has a job running; each
 * resumes where it stopped.
 */
async function measureRaw(ctx: RunContext, svc: Service): Promise<RawRun> {
  if (svc.workers.length) await waitQuiet(workerPids(svc));
  step(`raw bound: native RSA-2048 keygen in ${cores} processes for ${cfg.rawS} s`);
  if (!flags.url) {
    ctx.frozen = Object.entries(ourPids(ctx))
      .filter(([name]) => name !== 'bench')
      .map(([, pid]) => pid);
    for (const pid of ctx.frozen) process.kill(pid, 'SIGSTOP');
  }
  let r: RawRun;
  try {
    r = await rawBound(cfg.rawS);
  } finally {
    thaw(ctx);
  }
  // The service's idle-connection timers fire as it resumes: do not send on connections it is closing.
  svc.client.reconnect();
  svc.loadClient.reconnect();
  step(
    `  ${r.keysPerSecond} keys/s, ${r.keysPerCpuSecond} keys per CPU-second; other load ${r.otherCores} cores`,
  );
  return r;
}

/**
 * Phase 2: sustained, twice in a row (throughput, latency, whether memory grows), each between two
 * measurements of the raw bound: this machine's speed drifts by several % within minutes, so each
 * run is compared with the bound measured right before and right after it (with the service idle,
 * its key pools full). Returns the mean raw bound.
 */
async function measureSustained(ctx: RunContext, svc: Service, results: Results): Promise<MeanRaw> {
  const pooled = flags.url ? 0 : cfg.keyPoolSize * cfg.workers;
  const runs: (SustainedRun & { rssPeakMb: Record<string, number> })[] = [];
  const raws: RawRun[] = [];
  let rawBefore = await measureRaw(ctx, svc);
  raws.push(rawBefore);
  for (let i = 1; i <= 2; i++) {
    step(`sustained run ${i}: ${clients} clients, ${cfg.sustainedS} s after warm-up`);
    const r = await sustained(ctx, svc.loadClient, clients, cfg.sustainedS, pooled, svc.workers);
    const rssPeakMb = ctx.sampler.takePeaks();
    const rawAfter = await measureRaw(ctx, svc);
    raws.push(rawAfter);
    const around = meanRaw([rawBefore, rawAfter]);
    const run = { ...r, ...againstRaw(r, around), rssPeakMb };
    runs.push(run);
    step(
      `  ${r.perSecond} certs/s = ${run.ratioToRaw} ± ${run.ratioStdErr} x raw (${around.keysPerSecond} keys/s around it); p50 ${r.latencyMs.p50} p99 ${r.latencyMs.p99} ms; errors ${r.errors}; CPU efficiency ${run.cpu?.efficiency}; other load ${r.cpu?.otherCores} cores`,
    );
    rawBefore = rawAfter;
  }
  const raw = { ...meanRaw(raws), runs: raws };
  results.rawBound = raw;
  results.sustained = runs;
  const certs = runs.reduce((n, r) => n + r.ok, 0);
  const windowS = runs.reduce((n, r) => n + r.windowMs / 1000, 0);
  const perSecond = round(certs / windowS);
  results.sustainedOverall = { perSecond, ...ratioToRaw(perSecond, certs, raw) };
  if (svc.api) {
    results.peakRssMb = {
      api: round((procStatusKb(svc.api.pid, 'VmHWM') ?? 0) / 1024, 1),
      workers: svc.workers.map((w) => round((procStatusKb(w.pid, 'VmHWM') ?? 0) / 1024, 1)),
      source: '/proc/PID/status VmHWM after the sustained runs',
    };
  }
  return raw;
}

/** Phase 3: GetClientCertificate vs a bare Hono handler, same client, same machine, same run. */
async function measureGet(ctx: RunContext, svc: Service, results: Results) {
  step('GetClientCertificate vs bare Hono');
  const one = await generateOnce(svc.sdk);
  const path = `/clientcertificates/${one.clientCertificateId}`;
  const probe = await svc.client.get(path);
  if (probe.status !== 200) {
    results.get = { available: false, status: probe.status, body: probe.body.slice(0, 200) };
    step(`  GET ${path} answered ${probe.status}: GetClientCertificate not available, skipped`);
  } else {
    if (svc.workers.length) await waitQuiet([...workerPids(svc), svc.api!.pid]);
    const service = await getThroughput(svc.client, path, cfg.getS, svc.api?.pid);
    const barePort = await freePort();
    const bare = track(
      ctx,
      startProcess(
        'bare-hono',
        'bench/bare-hono',
        { ...process.env, PORT: String(barePort) },
        join(ctx.logDir, 'bare.log'),
      ),
      false,
    );
    const bareClient = new SignedClient(`http://127.0.0.1:${barePort}`);
    await waitHealthy(bareClient, 0);
    const bareRun = await getThroughput(bareClient, path, cfg.getS, bare.pid);
    bareClient.close();
    await stopProcess(ctx, bare);
    results.get = {
      available: true,
      service,
      bareHono: bareRun,
      ratio: round(service.perSecond / bareRun.perSecond, 3),
    };
    step(
      `  service ${service.perSecond} req/s (${service.serverCpuMsPerRequest} ms CPU each, other load ${service.cpu?.otherCores} cores), ` +
        `bare Hono ${bareRun.perSecond} req/s (${bareRun.serverCpuMsPerRequest} ms CPU each, other load ${bareRun.cpu?.otherCores} cores)`,
    );
  }
  ctx.sampler.takePeaks();
}

/**
 * The pre-auth flood's process (bench/preauth-flood.ts), waited for until it floods; `summary()`, once
 * it is stopped, is its last line (answers by status).
 */
async function startFlood(ctx: RunContext, url: string): Promise<ServiceProcess & { summary(): string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/preauth-flood.ts')], {
    cwd: ROOT,
    env: { ...process.env, FLOOD_URL: url, FLOOD_CONNECTIONS: String(cfg.preAuthConnections) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const p = {
    name: 'preauth-flood',
    pid: proc.pid!,
    proc,
    logFile: '',
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    summary: () => text.split('\n').filter(Boolean).at(-1) ?? '',
  };
  track(ctx, p, false);
  const until = Date.now() + 30_000;
  while (!text.includes('flooding\n')) {
    if (Date.now() > until || proc.exitCode !== null) throw new Error(`the flood did not start: ${text}`);
    await sleep(50);
  }
  return p;
}

/** Sequential signed Gets of `path` for `seconds`: each one's latency, ms. */
async function sequentialGets(client: SignedClient, path: string, seconds: number) {
  const ms: number[] = [];
  const statuses: Record<string, number> = {};
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    const a = await client.get(path);
    ms.push(performance.now() - t);
    statuses[a.status] = (statuses[a.status] ?? 0) + 1;
  }
  return { requests: ms.length, statuses, latencyMs: percentiles(ms) };
}

/**
 * Phase 3b (issue 23): a signed GetClientCertificate's p50 quiet, then while another process floods
 * the API with worst-case unauthenticated requests (bench/preauth-flood.ts); goal: at most 2x.
 */
async function measurePreAuth(ctx: RunContext, svc: Service, results: Results) {
  step(`pre-auth flood: signed Get p50, quiet and beside ${cfg.preAuthConnections} flooding connections`);
  const one = await generateOnce(svc.sdk);
  const path = `/clientcertificates/${one.clientCertificateId}`;
  const client = new SignedClient(svc.url, 1);
  try {
    if (svc.workers.length) await waitQuiet(workerPids(svc));
    const quiet = await sequentialGets(client, path, cfg.preAuthS);
    const flood = await startFlood(ctx, svc.url);
    let flooded: Awaited<ReturnType<typeof sequentialGets>>;
    let floodCounts: unknown;
    try {
      await sleep(1000); // past the failed-authentication budgets' first bursts
      flooded = await sequentialGets(client, path, cfg.preAuthS);
    } finally {
      await stopProcess(ctx, flood);
      const line = flood.summary();
      try {
        floodCounts = JSON.parse(line);
      } catch {
        floodCounts = line;
      }
    }
    const ratio = round(flooded.latencyMs.p50 / quiet.latencyMs.p50, 2);
    results.preAuthFlood = {
      connections: cfg.preAuthConnections,
      seconds: cfg.preAuthS,
      quiet,
      flooded,
      flood: floodCounts,
      ratio,
      loadAverage: loadavg().map((x) => round(x)),
    };
    step(
      `  signed Get p50 quiet ${quiet.latencyMs.p50} ms, flooded ${flooded.latencyMs.p50} ms = ${ratio}x (goal <= 2x); flood answers ${JSON.stringify(floodCounts)}; load average ${loadavg()
        .map((x) => round(x))
        .join(' ')}`,
    );
  } finally {
    client.close();
  }
}

/** Phase 4: burst after idle: pools refilled, then 8 s of nothing, then 4 requests one after another. */
async function measureBurst(ctx: RunContext, svc: Service, results: Results) {
  step(
    `burst after idle: ${cfg.burstRounds} x (${BURST_IDLE_MS / 1000} s idle, ${BURST_REQUESTS} sequential requests)`,
  );
  const burst: number[] = [];
  const burstOther: number[] = [];
  for (let round = 0; round < cfg.burstRounds; round++) {
    if (svc.workers.length) await waitQuiet(workerPids(svc));
    const idle = new CpuWindow(ourPids(ctx));
    await sleep(BURST_IDLE_MS);
    burstOther.push(idle.end().otherCores);
    for (let i = 0; i < BURST_REQUESTS; i++) {
      const t = performance.now();
      await generateOnce(svc.sdk);
      burst.push(performance.now() - t);
    }
  }
  const burstP = percentiles(burst);
  results.burstAfterIdle = {
    samples: burst.map((x) => round(x, 1)),
    latencyMs: burstP,
    otherCoresDuringIdle: burstOther,
  };
  step(
    `  p50 ${burstP.p50} ms, p99 ${burstP.p99} ms; other load during the idle pauses ${burstOther.join(', ')} cores`,
  );
}

/**
 * Phase 6: scaling: the same per-process setup (concurrency 1, one core's worth) with one and two
 * processes. Replaces the service's workers.
 */
async function measureScaling(ctx: RunContext, svc: Service, results: Results, raw: MeanRaw) {
  const scaling: Record<string, unknown> = { workerConcurrency: 1 };
  for (const w of [...svc.workers]) await stopProcess(ctx, w);
  svc.workers = [];
  // What the hardware itself gives from one process to two (no service), measured back to back: the
  // ratio's ceiling. This machine's speed drifts by tens of % over minutes, so the two are adjacent.
  await waitQuiet(workerPids(svc));
  step(`the hardware's own scaling: raw keygen in 1, then ${cores} processes (${cfg.rawS} s each)`);
  const rawOne = await rawBound(cfg.rawS, 1);
  const rawAll = await rawBound(cfg.rawS, cores);
  scaling.hardware = {
    oneProcess: rawOne,
    allProcesses: rawAll,
    ratio: round(rawAll.keysPerSecond / rawOne.keysPerSecond, 3),
  };
  step(`  ${rawOne.keysPerSecond} -> ${rawAll.keysPerSecond} keys/s`);
  for (const n of [1, 2]) {
    while (svc.workers.length < n) svc.workers.push(startWorkerProcess(ctx, svc.workers.length + 1, 1));
    await waitHealthy(svc.client, n);
    await waitQuiet(workerPids(svc));
    step(`scaling: ${n} worker process(es) x concurrency 1`);
    const s = await sustained(ctx, svc.loadClient, 2 * n + 2, cfg.scalingS, cfg.keyPoolSize * n, svc.workers);
    const r = { ...s, ...againstRaw(s, raw) };
    scaling[`processes${n}`] = r;
    step(
      `  ${r.perSecond} certs/s; CPU efficiency ${r.cpu?.efficiency}; other load ${r.cpu?.otherCores} cores`,
    );
  }
  const s1 = (scaling.processes1 as SustainedRun).perSecond;
  const s2 = (scaling.processes2 as SustainedRun).perSecond;
  scaling.ratio = round(s2 / s1, 3);
  results.scaling = scaling;
}

async function allPhases(ctx: RunContext, svc: Service, results: Results) {
  const raw = await measureSustained(ctx, svc, results);
  await measureGet(ctx, svc, results);
  await measurePreAuth(ctx, svc, results);
  await measureBurst(ctx, svc, results);
  if (cfg.mixed) await runMixed(ctx, svc, results, raw);
  if (cfg.scaling) await measureScaling(ctx, svc, results, raw);
}

async function main(ctx: RunContext): Promise<Results> {
  const t0 = Date.now();
  const results: Results = {
    startedAt: new Date(t0).toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: { cores, node: process.version, loadAverageAtStart: loadavg().map((x) => round(x)) },
    config: { ...cfg, clients, target: flags.url ?? 'local', runs: 'node dist/*.js, built by npm run build' },
  };
  const svc = await startService(ctx);
  if (flags.phase === 'preauth') {
    await measurePreAuth(ctx, svc, results);
  } else if (flags.phase === 'sustained') {
    await measureSustained(ctx, svc, results);
  } else if (flags.phase === 'mixed') {
    const rawRun = await measureRaw(ctx, svc);
    const raw = meanRaw([rawRun]);
    results.rawBound = { ...raw, runs: [rawRun] };
    await runMixed(ctx, svc, results, raw);
  } else {
    if (flags.phase !== undefined)
      throw new Error(`--phase: preauth, sustained or mixed, got ${JSON.stringify(flags.phase)}`);
    await allPhases(ctx, svc, results);
  }
  results.machine = { ...(results.machine as object), loadAverageAtEnd: loadavg().map((x) => round(x)) };
  results.durationS = Math.round((Date.now() - t0) / 1000);
  svc.client.close();
  svc.loadClient.close();
  svc.sdk.destroy();
  return results;
}

const ctx = newRunContext();
stopOnSignals(ctx);
try {
  const results = await main(ctx);
  mkdirSync(dirname(flags.out), { recursive: true });
  writeFileSync(flags.out, `${JSON.stringify(results, null, 2)}\n`);
  out(
    `\n${table(results, { quick, lockRenewMs: LOCK_RENEW_MS })}\n\nload average at start ${JSON.stringify((results.machine as { loadAverageAtStart: number[] }).loadAverageAtStart)}, at end ${JSON.stringify((results.machine as { loadAverageAtEnd: number[] }).loadAverageAtEnd)} (${cores} cores)\n`,
  );
  await cleanup(ctx);
  // Service logs are kept only when asked (the Get phase alone writes megabytes) or on failure.
  if (flags['keep-logs']) out(`results: ${flags.out}; service logs: ${ctx.logDir}\n`);
  else {
    rmSync(ctx.logDir, { recursive: true, force: true });
    out(`results: ${flags.out}\n`);
  }
  process.exit(0);
} catch (err) {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\nservice logs: ${ctx.logDir}\n`);
  await cleanup(ctx);
  process.exit(1);
}
