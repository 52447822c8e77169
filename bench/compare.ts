/**
 * Two `npm run bench` results side by side, as the Markdown table docs/performance.md shows (e.g. Node.js 20 and 24):
 *
 *   PATH="$(bash ../shared/tools/node-runtime.sh 20):$PATH" npm run bench -- --out bench/results/node20.json
 *   PATH="$(bash ../shared/tools/node-runtime.sh 24):$PATH" npm run bench -- --out bench/results/node24.json
 *   npx tsx bench/compare.ts bench/results/node20.json bench/results/node24.json
 *
 * Each column is headed by the Node.js version the run recorded, with the load averages at its start and end.
 */
import { readFileSync } from 'node:fs';

interface Latency {
  p50: number;
  p99: number;
}
/** The parts of bench/bench.ts's result file compared here. */
interface BenchResult {
  machine: { node: string; loadAverageAtStart: number[]; loadAverageAtEnd?: number[] };
  rawBound?: { keysPerSecond: number };
  sustained?: { perSecond: number; ratioToRaw: number; latencyMs: Latency }[];
  sustainedOverall?: { perSecond: number; ratioToRaw: number; ratioStdErr: number };
  burstAfterIdle?: { latencyMs: Latency };
  get?: {
    available: boolean;
    service?: { perSecond: number; serverCpuMsPerRequest: number };
    ratio?: number;
  };
  peakRssMb?: { api: number; workers: number[] };
}

const files = process.argv.slice(2);
if (files.length !== 2) {
  process.stderr.write('usage: tsx bench/compare.ts A.json B.json\n');
  process.exit(2);
}
const runs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as BenchResult);

const n = (x: number | undefined, digits = 2) => (x === undefined ? '–' : x.toFixed(digits));
const rows: [string, (r: BenchResult) => string][] = [
  ['raw bound (keys/s)', (r) => n(r.rawBound?.keysPerSecond)],
  ['sustained issuance (certificates/s)', (r) => n(r.sustainedOverall?.perSecond)],
  [
    'sustained × the bound',
    (r) =>
      r.sustainedOverall
        ? `${n(r.sustainedOverall.ratioToRaw, 3)} ± ${n(r.sustainedOverall.ratioStdErr, 3)}`
        : '–',
  ],
  [
    'sustained latency p50 / p99 (ms)',
    (r) =>
      r.sustained?.[0]
        ? `${n(r.sustained[0].latencyMs.p50, 0)} / ${n(r.sustained[0].latencyMs.p99, 0)}`
        : '–',
  ],
  [
    'burst after idle p50 / p99 (ms)',
    (r) =>
      r.burstAfterIdle
        ? `${n(r.burstAfterIdle.latencyMs.p50, 1)} / ${n(r.burstAfterIdle.latencyMs.p99, 1)}`
        : '–',
  ],
  [
    'GetClientCertificate (requests/s, API CPU ms each)',
    (r) =>
      r.get?.service ? `${n(r.get.service.perSecond, 0)}, ${n(r.get.service.serverCpuMsPerRequest, 3)}` : '–',
  ],
  ['GetClientCertificate ÷ bare Hono', (r) => n(r.get?.ratio)],
  [
    'peak RSS API / worker (MB)',
    (r) =>
      r.peakRssMb ? `${n(r.peakRssMb.api, 0)} / ${r.peakRssMb.workers.map((w) => n(w, 0)).join(', ')}` : '–',
  ],
];

const head = runs.map(
  (r) =>
    `Node ${r.machine.node} (load ${r.machine.loadAverageAtStart[0]} → ${r.machine.loadAverageAtEnd?.[0] ?? '?'})`,
);
const table = [
  ['measure', ...head],
  ['---', ...head.map(() => '---')],
  ...rows.map(([label, get]) => [label, ...runs.map(get)]),
];
process.stdout.write(`${table.map((cells) => `| ${cells.join(' | ')} |`).join('\n')}\n`);
