/**
 * The bench's mixed phase (issue 22, docs/scheduling.md): one polite account sends a Generate every
 * 1.5 s, first alone, then beside (a) a bulk batch enqueued whole, (b) another account flooding from
 * 12 connections, (c) both at once. Each scenario reports the polite account's latencies beside its
 * latency alone (same run), and the certificates/s the bulk batch and the flooder got between them,
 * against the raw key-generation bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import type { Credential } from '../api/auth/credentials.js';
import { BULK_JOB_CERTIFICATES } from '../shared/jobs.js';
import { meanRaw, ratioToRaw, round, type RawFigures } from './figures.js';
import { percentiles, SignedClient, type Percentiles } from './load.js';
import { CpuWindow } from './procs.js';
import { sleep } from './procs.js';

/** The accounts of the mixed phase; the bench's CREDENTIALS_FILE holds them beside the dev credential. */
export const MIXED_ACCOUNTS = {
  polite: { accessKeyId: 'AKIABENCHPOLITE', secretAccessKey: 'bench-polite', accountId: '222222222222' },
  flooder: { accessKeyId: 'AKIABENCHFLOOD', secretAccessKey: 'bench-flood', accountId: '111111111111' },
  bulk: { accountId: '333333333333' },
};

/** The credentials file entries for the mixed phase's accounts. */
export function mixedCredentials(): Pick<Credential, 'accessKeyId' | 'secretAccessKey' | 'accountId'>[] {
  return [MIXED_ACCOUNTS.polite, MIXED_ACCOUNTS.flooder];
}

export interface MixedOptions {
  url: string;
  /** Environment of the service (REDIS_URL or the replicated Redis, REDIS_PREFIX) for the bulk CLI. */
  env: NodeJS.ProcessEnv;
  /** Where the bulk CLI writes its output. */
  dir: string;
  /**
   * The raw key-generation bound measured earlier in the run, keys/s: what each scenario is set
   * against when `measureRaw` is not given.
   */
  rawKeysPerSecond: number;
  /**
   * Measures the raw bound now (the queue idle). Given, the bound is measured before the first
   * scenario and after each one, and each scenario is set against the mean of the bound right
   * before and right after it, as the sustained runs are: this machine's bound drifts by ±10 %
   * within minutes, more than a mean over the whole run can stand for.
   */
  measureRaw?: () => Promise<RawFigures>;
  quick: boolean;
  step: (s: string) => void;
  /** Waits until no job is running or waiting. */
  drain: () => Promise<void>;
  /** The service's processes and the bench's own, by name: each scenario reports their CPU per certificate. */
  pids?: () => Record<string, number>;
  /** The raw bound's CPU cost of a key (keys per CPU-second), for the CPU that is not the key. */
  rawKeysPerCpuSecond?: number;
}

export interface PoliteFigures {
  sent: number;
  ok: number;
  /** Non-201 answers by status. */
  errors: Record<string, number>;
  latencyMs: Percentiles;
}

export interface MixedScenario {
  seconds: number;
  /** The polite account's Generates in the window (absent: the batch alone, (a0)). */
  polite?: PoliteFigures;
  /** Certificates/s issued to the bulk batch and the flooder together in the window. */
  othersPerSecond: number;
  othersRatioToRaw: number;
  /** ± one standard error of `othersRatioToRaw` (key times vary: see figures.ts, ratioToRaw). */
  othersRatioStdErr?: number;
  /** The raw bound this scenario is set against, keys/s, and how it was measured. */
  rawAround?: { keysPerSecond: number; keysPerCpuSecond: number; before: number; after: number };
  flooder?: { ok: number; errors: Record<string, number> };
  bulk?: { count: number; enqueueS: number };
  /**
   * CPU in the window per certificate issued (polite, bulk and flooder), ms: by process (the bulk CLI
   * as `bulk`), all together, and all less one key at the raw bound's cost; `otherCores`: the rest
   * of the machine meanwhile.
   */
  cpu?: {
    msPerCertificate: Record<string, number>;
    totalMsPerCertificate: number;
    overheadMsPerCertificate?: number;
    otherCores: number;
  };
}

export interface MixedResults {
  politeIntervalMs: number;
  flooderConnections: number;
  alone: { seconds: number; polite: PoliteFigures };
  /** (a0) The bulk batch with nothing beside it: issue 22's "alone, a batch runs at >= 0.9 x raw". */
  bulkAlone?: MixedScenario;
  bulk: MixedScenario;
  flood: MixedScenario;
  both: MixedScenario;
}

const POLITE_INTERVAL_MS = 1500;
const FLOODER_CONNECTIONS = 12;

async function issuedTotal(client: SignedClient): Promise<number> {
  const r = await client.get('/metrics');
  const m = /^certificates_issued_total (\d+)/m.exec(r.body);
  if (r.status !== 200 || !m) throw new Error(`/metrics answered ${r.status}`);
  return Number(m[1]);
}

async function bulkWaiting(client: SignedClient): Promise<number> {
  const h = JSON.parse((await client.get('/health')).body) as { queue?: { backlog?: { bulk: number } } };
  return h.queue?.backlog?.bulk ?? 0;
}

/** One Generate every `POLITE_INTERVAL_MS` for `seconds`, each timed on its own (open loop). */
async function politeLoop(client: SignedClient, seconds: number): Promise<PoliteFigures> {
  const latencies: number[] = [];
  const errors: Record<string, number> = {};
  const sends: Promise<void>[] = [];
  const end = Date.now() + seconds * 1000;
  for (let next = Date.now(); next < end; next += POLITE_INTERVAL_MS) {
    await sleep(Math.max(0, next - Date.now()));
    sends.push(
      (async () => {
        const t = performance.now();
        try {
          const a = await client.post('/clientcertificates', { description: 'polite' });
          if (a.status !== 201) {
            errors[a.status] = (errors[a.status] ?? 0) + 1;
            return;
          }
          const x = new X509Certificate(
            (JSON.parse(a.body) as { pemEncodedCertificate: string }).pemEncodedCertificate,
          );
          if (!x.verify(x.publicKey)) throw new Error('certificate does not verify');
          latencies.push(performance.now() - t);
        } catch (err) {
          const k = (err as Error).message.slice(0, 40);
          errors[k] = (errors[k] ?? 0) + 1;
        }
      })(),
    );
  }
  await Promise.all(sends);
  return { sent: sends.length, ok: latencies.length, errors, latencyMs: percentiles(latencies) };
}

/** The flooder: `FLOODER_CONNECTIONS` closed loops until `stop()`. */
function flood(client: SignedClient): {
  stop: () => Promise<{ ok: number; errors: Record<string, number> }>;
} {
  let stopped = false;
  let ok = 0;
  const errors: Record<string, number> = {};
  const loops = Array.from({ length: FLOODER_CONNECTIONS }, async () => {
    while (!stopped) {
      try {
        const a = await client.post('/clientcertificates', { description: 'flood' });
        if (a.status === 201) ok++;
        else {
          errors[a.status] = (errors[a.status] ?? 0) + 1;
          await sleep(50);
        }
      } catch (err) {
        const k = (err as Error).message.slice(0, 40);
        errors[k] = (errors[k] ?? 0) + 1;
        await sleep(50);
      }
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { ok, errors };
    },
  };
}

/** `npm run bulk` (dist/scripts/bulk.js) for the bulk account; resolves once the batch is enqueued whole. */
async function startBulk(o: MixedOptions, probe: SignedClient, count: number) {
  const out = join(o.dir, `mixed-bulk-${Date.now()}.ndjson`);
  const t = Date.now();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      join(import.meta.dirname, '..', 'dist', 'scripts', 'bulk.js'),
      ...['--count', String(count), '--account', MIXED_ACCOUNTS.bulk.accountId, '--out', out],
    ],
    { env: { ...o.env, LOG_LEVEL: 'silent', CLIENT_CERTIFICATE_LIMIT: '0' }, stdio: 'ignore' },
  );
  let exited = false;
  child.once('exit', () => (exited = true));
  // Enqueued whole: every job waits or has run (a few have, while the rest were being enqueued).
  const until = Date.now() + 300_000;
  const issued0 = await issuedTotal(probe);
  for (;;) {
    // Jobs waiting, of BULK_JOB_CERTIFICATES certificates each (the last may hold fewer).
    const waiting = (await bulkWaiting(probe)) * BULK_JOB_CERTIFICATES;
    const done = (await issuedTotal(probe)) - issued0;
    if (waiting + done >= count * 0.98) break;
    if (exited || Date.now() > until)
      throw new Error(`bulk batch of ${count} not enqueued (${waiting} waiting)`);
    await sleep(250);
  }
  return {
    enqueueS: round((Date.now() - t) / 1000, 1),
    pid: child.pid,
    stop: () => {
      child.kill('SIGKILL');
    },
  };
}

async function scenario(
  o: MixedOptions,
  probe: SignedClient,
  /** Undefined: nobody beside the others (the batch alone). */
  polite: SignedClient | undefined,
  seconds: number,
  others: { bulk?: number; flood?: SignedClient },
  /**
   * With `o.measureRaw`: the bound last measured (this scenario's "before"; its "after" replaces it) and
   * how to measure it again.
   */
  bound: { before?: RawFigures; measure?: () => Promise<RawFigures> },
): Promise<MixedScenario> {
  const bulk = others.bulk ? await startBulk(o, probe, others.bulk) : undefined;
  const flooder = others.flood ? flood(others.flood) : undefined;
  if (flooder) await sleep(2000); // the flooder's backlog builds up first
  const i0 = await issuedTotal(probe);
  const t0 = Date.now();
  const pids = o.pids?.();
  const cpuWindow = pids && new CpuWindow(bulk?.pid ? { ...pids, bulk: bulk.pid } : pids);
  const p = polite ? await politeLoop(polite, seconds) : await sleep(seconds * 1000).then(() => undefined);
  const i1 = await issuedTotal(probe);
  const cpu = cpuWindow?.end();
  const windowS = (Date.now() - t0) / 1000;
  const f = await flooder?.stop();
  bulk?.stop();
  await o.drain();
  const othersIssued = i1 - i0 - (p?.ok ?? 0);
  const othersPerSecond = round(othersIssued / windowS);
  // Set against the bound measured right before and right after this window (measureRaw), else
  // against the run's.
  let rawKeysPerCpuSecond = o.rawKeysPerCpuSecond;
  const r: MixedScenario = { seconds: round(windowS, 1), othersPerSecond, othersRatioToRaw: 0 };
  if (p) r.polite = p;
  if (bound.measure && bound.before) {
    const after = await bound.measure();
    const around = meanRaw([bound.before, after]);
    rawKeysPerCpuSecond = around.keysPerCpuSecond;
    r.rawAround = {
      keysPerSecond: around.keysPerSecond,
      keysPerCpuSecond: around.keysPerCpuSecond,
      before: bound.before.keysPerSecond,
      after: after.keysPerSecond,
    };
    const { ratioToRaw: ratio, ratioStdErr } = ratioToRaw(othersPerSecond, othersIssued, around);
    r.othersRatioToRaw = ratio;
    r.othersRatioStdErr = ratioStdErr;
    bound.before = after;
  } else {
    r.othersRatioToRaw = round(othersPerSecond / o.rawKeysPerSecond);
  }
  if (cpu && i1 > i0) {
    const ms = (cpuSeconds: number) => round((cpuSeconds * 1000) / (i1 - i0), 2);
    const total = ms(cpu.oursCpuSeconds);
    r.cpu = {
      msPerCertificate: Object.fromEntries([
        ...Object.entries(cpu.byProcess).map(([n, x]) => [n, ms(x)]),
        ...Object.entries(cpu.workerMainThreads).map(([n, x]) => [`${n} main thread`, ms(x)]),
      ]),
      totalMsPerCertificate: total,
      otherCores: cpu.otherCores,
    };
    if (rawKeysPerCpuSecond) {
      r.cpu.overheadMsPerCertificate = round(total - 1000 / rawKeysPerCpuSecond, 2);
    }
  }
  if (f) r.flooder = f;
  if (bulk && others.bulk) r.bulk = { count: others.bulk, enqueueS: bulk.enqueueS };
  return r;
}

const show = (p: PoliteFigures) =>
  `p50 ${p.latencyMs.p50} ms, p95 ${p.latencyMs.p95} ms, ${p.ok}/${p.sent} answered 201${Object.keys(p.errors).length ? ` (others: ${JSON.stringify(p.errors)})` : ''}`;

const vsRaw = (s: MixedScenario) =>
  s.rawAround
    ? `${s.othersRatioToRaw} ± ${s.othersRatioStdErr} x raw (${s.rawAround.keysPerSecond} keys/s around it: ${s.rawAround.before} before, ${s.rawAround.after} after)`
    : `${s.othersRatioToRaw} x raw`;

/** Runs the mixed phase against a service whose queue is idle. */
export async function measureMixed(o: MixedOptions): Promise<MixedResults> {
  const probe = new SignedClient(o.url, 4);
  const polite = new SignedClient(o.url, 64, MIXED_ACCOUNTS.polite);
  const flooder = new SignedClient(o.url, FLOODER_CONNECTIONS, MIXED_ACCOUNTS.flooder);
  const seconds = o.quick ? 12 : 60;
  const bulkCount = o.quick ? 1000 : 10_000;
  try {
    o.step(
      `mixed: the polite account alone, one Generate every ${POLITE_INTERVAL_MS / 1000} s for ${o.quick ? 12 : 30} s`,
    );
    const alone = { seconds: o.quick ? 12 : 30, polite: await politeLoop(polite, o.quick ? 12 : 30) };
    o.step(`  ${show(alone.polite)}`);
    const measureRaw = o.measureRaw;
    // The service was held still meanwhile: its kept-alive connections are renewed after each measurement.
    const measure =
      measureRaw &&
      (async () => {
        const r = await measureRaw();
        for (const c of [probe, polite, flooder]) c.reconnect();
        return r;
      });
    const bound = { before: await measure?.(), measure };
    o.step(`mixed (a0): a bulk batch of ${bulkCount} enqueued whole, alone, ${seconds} s`);
    const bulkAlone = await scenario(o, probe, undefined, seconds, { bulk: bulkCount }, bound);
    o.step(`  bulk ${bulkAlone.othersPerSecond} certs/s = ${vsRaw(bulkAlone)}`);
    o.step(`mixed (a): beside a bulk batch of ${bulkCount} enqueued whole, ${seconds} s`);
    const bulk = await scenario(o, probe, polite, seconds, { bulk: bulkCount }, bound);
    o.step(`  ${show(bulk.polite!)}; bulk ${bulk.othersPerSecond} certs/s = ${vsRaw(bulk)}`);
    o.step(`mixed (b): beside an account flooding from ${FLOODER_CONNECTIONS} connections, ${seconds} s`);
    const fl = await scenario(o, probe, polite, seconds, { flood: flooder }, bound);
    o.step(`  ${show(fl.polite!)}; flooder ${fl.othersPerSecond} certs/s = ${vsRaw(fl)}`);
    o.step(`mixed (c): beside both, ${seconds} s`);
    const both = await scenario(o, probe, polite, seconds, { bulk: bulkCount, flood: flooder }, bound);
    o.step(`  ${show(both.polite!)}; bulk + flooder ${both.othersPerSecond} certs/s = ${vsRaw(both)}`);
    return {
      politeIntervalMs: POLITE_INTERVAL_MS,
      flooderConnections: FLOODER_CONNECTIONS,
      alone,
      bulkAlone,
      bulk,
      flood: fl,
      both,
    };
  } finally {
    probe.close();
    polite.close();
    flooder.close();
  }
}
