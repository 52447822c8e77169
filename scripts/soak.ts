/**
 * Soak test: `npm run soak -- --minutes N [--rate R] [--workers W] [--apis A] [--concurrency C]`.
 *
 * Starts its own redis-server (or uses REDIS_SENTINELS / REDIS_CLUSTER_NODES when set), A API processes and W worker processes (the real entry points), then
 * drives a steady R Generate calls per second through the AWS SDK for N minutes, deleting each
 * certificate again so the account never fills up. Every minute it prints the calls that succeeded,
 * the errors by type, Generate latency percentiles and each process's resident memory, so a leak
 * shows as a rising RSS column. Exits 1 if any call failed. Traffic goes to 127.0.0.1 only.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DeleteClientCertificateCommand } from '@aws-sdk/client-api-gateway';
import { awsClient, generate } from '../devtools/aws-client.js';
import { killAll, serviceEnv, spawnApi, spawnWorker, type ServiceProcess } from '../devtools/processes.js';
import { startRedis } from '../devtools/redis-server.js';
import { withTimeout } from '../shared/timeout.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    rate: { type: 'string', default: '4' },
    workers: { type: 'string', default: '2' },
    apis: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '32' },
  },
});
const num = (name: string, v: string | undefined, min: number, max: number) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be a number between ${min} and ${max}, got ${v}\n`);
    process.exit(2);
  }
  return n;
};
const minutes = num('minutes', values.minutes, 0.1, 24 * 60);
const rate = num('rate', values.rate, 0.1, 200);
const workerCount = num('workers', values.workers, 1, 16);
const apiCount = num('apis', values.apis, 1, 8);
const maxInFlight = num('concurrency', values.concurrency, 1, 1000);

const out = (s: string) => process.stdout.write(`${s}\n`);

/** Resident set size of a process in MiB, from /proc (Linux). */
function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : NaN;
  } catch {
    return NaN;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Minute {
  ok: number;
  errors: Map<string, number>;
  latencies: number[];
  skipped: number;
}
const fresh = (): Minute => ({ ok: 0, errors: new Map(), latencies: [], skipped: 0 });

async function main() {
  // REDIS_SENTINELS or REDIS_CLUSTER_NODES in the environment (and their passwords, which the child
  // processes inherit): soak that replicated Redis under a fresh prefix; otherwise a private redis-server.
  const clusterNodes = process.env.REDIS_CLUSTER_NODES;
  const redis = process.env.REDIS_SENTINELS || clusterNodes ? undefined : await startRedis();
  const env = serviceEnv(redis ? { url: redis.url } : clusterNodes ? { clusterNodes } : { url: '' }, {
    LOG_LEVEL: 'info',
    GENERATE_TIMEOUT_MS: '30000',
    KEY_POOL_SIZE: process.env.KEY_POOL_SIZE ?? '32',
    // One account drives all the load: AWS's per-account throttle (10/s) would turn the soak into a
    // throttling test. Quota stays on: every certificate is deleted again.
    RATE_LIMIT_RPS: '0',
  });
  let procs: ServiceProcess[] = [];
  let workers: ServiceProcess[] = [];
  const stopAll = async () => {
    await killAll();
    await redis?.destroy();
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    const apis = await Promise.all(Array.from({ length: apiCount }, () => spawnApi(env)));
    workers = await Promise.all(Array.from({ length: workerCount }, () => spawnWorker(env)));
    procs = [...apis, ...workers];
    const clients = apis.map((a) => awsClient(a.url, { requestTimeoutMs: 40_000 }));
    out(
      `soak: ${minutes} min at ${rate} Generate/s (then Delete), ${apiCount} API, ${workerCount} worker process(es), redis ${redis?.url ?? process.env.REDIS_SENTINELS ?? clusterNodes}`,
    );
    const header = [
      'min',
      'ok',
      'errors',
      'skipped',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'max ms',
      ...apis.map((_, i) => `api${i} MiB`),
      ...workers.map((_, i) => `wrk${i} MiB`),
    ];
    out(header.join('\t'));

    const totals = { ok: 0, errors: new Map<string, number>(), latencies: [] as number[] };
    let current = fresh();
    let inFlight = 0;
    let sent = 0;
    const tasks = new Set<Promise<void>>();
    const one = async () => {
      inFlight += 1;
      try {
        const client = clients[sent++ % clients.length]!;
        const o = await generate(client, { description: 'soak', tags: { soak: 'yes' } });
        // Counted in the minute the answer arrives: a minute's row is printed when it ends, so
        // counting by start time would drop answers that outlast their minute.
        const minute = current;
        if (o.ok) {
          minute.ok += 1;
          minute.latencies.push(o.ms);
          try {
            await client.send(
              new DeleteClientCertificateCommand({ clientCertificateId: o.cert.clientCertificateId! }),
            );
          } catch (err) {
            const key = `Delete ${(err as Error).name}`;
            minute.errors.set(key, (minute.errors.get(key) ?? 0) + 1);
          }
        } else {
          const key = `${o.status ?? 'network'} ${o.type}`;
          minute.errors.set(key, (minute.errors.get(key) ?? 0) + 1);
        }
      } finally {
        inFlight -= 1;
      }
    };

    const started = Date.now();
    const end = started + minutes * 60_000;
    const intervalMs = 1000 / rate;
    let minuteNo = 0;
    let nextMinute = started + 60_000;
    const report = (m: Minute, label: string) => {
      const sorted = [...m.latencies].sort((a, b) => a - b);
      const errs = [...m.errors].map(([k, v]) => `${k}×${v}`).join(',') || '0';
      out(
        [
          label,
          m.ok,
          errs,
          m.skipped,
          percentile(sorted, 50),
          percentile(sorted, 95),
          percentile(sorted, 99),
          sorted.at(-1) ?? NaN,
          ...procs.map((p) => rssMiB(p.pid)),
        ].join('\t'),
      );
      totals.ok += m.ok;
      totals.latencies.push(...m.latencies);
      for (const [k, v] of m.errors) totals.errors.set(k, (totals.errors.get(k) ?? 0) + v);
    };

    // Paced by the clock, not by answers: a slow service gets the same offered load.
    for (let i = 0; ; i++) {
      const due = started + i * intervalMs;
      if (due >= end) break;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      if (Date.now() >= nextMinute) {
        minuteNo += 1;
        const done = current;
        current = fresh();
        nextMinute += 60_000;
        // Answers still arriving for the previous minute count there; report it a beat later.
        setTimeout(() => report(done, String(minuteNo)), 0);
      }
      if (inFlight >= maxInFlight) {
        current.skipped += 1;
        continue;
      }
      const t = one();
      tasks.add(t);
      void t.finally(() => tasks.delete(t));
    }
    await withTimeout(Promise.all(tasks), 45_000);
    report(current, String(minuteNo + 1));

    const sorted = totals.latencies.sort((a, b) => a - b);
    const errorCount = [...totals.errors.values()].reduce((a, b) => a + b, 0);
    out(
      `total: ${totals.ok} ok, ${errorCount} errors${errorCount ? ` (${[...totals.errors].map(([k, v]) => `${k}×${v}`).join(', ')})` : ''}; ` +
        `Generate latency p50 ${percentile(sorted, 50)} ms, p95 ${percentile(sorted, 95)} ms, p99 ${percentile(sorted, 99)} ms, max ${sorted.at(-1)} ms`,
    );
    for (const p of procs) {
      const crashed = !p.alive;
      if (crashed) out(`${p.kind} ${p.pid} died during the soak`);
    }
    const count = (msg: string) =>
      workers.reduce((n, w) => n + w.logs.filter((l) => l.msg === msg).length, 0);
    out(
      `workers: ${count('generation job completed')} jobs completed, ${count('generation job failed')} failed, ` +
        `${count('watchdog: worker stopped taking jobs; replacing it')} watchdog replacements, ${count('worker error')} worker errors`,
    );
    process.exitCode = errorCount > 0 || procs.some((p) => !p.alive) ? 1 : 0;
  } finally {
    await stopAll();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`soak failed: ${(err as Error).stack ?? String(err)}\n`);
  void killAll().finally(() => process.exit(1));
});
