/**
 * The bench's figures and the arithmetic between them (pure: no processes, no I/O): a measurement of
 * the raw bound, a sustained run, and their ratio with its standard error.
 */
import type { ClosedLoopResult } from './load.js';
import type { CpuWindow } from './procs.js';

export const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** One measurement of the raw bound: `processes` processes generating RSA-2048 keys for `seconds`. */
export interface RawRun {
  processes: number;
  seconds: number;
  keys: number;
  /** How much one key's generation time varies: standard deviation / mean. */
  keyTimeCv: number;
  keysPerSecond: number;
  keysPerCpuSecond: number;
  /** Everything busy on the machine besides the key generators, in cores. */
  otherCores: number;
}

/** Worker event-loop delay beyond the sampling period, from the runtime-stats lines of a window. */
export interface LoopDelay {
  p99Ms: number;
  maxMs: number;
  intervals: number;
}

export interface SustainedRun extends Omit<ClosedLoopResult, 'windowStart' | 'windowEnd'> {
  clients: number;
  workerLoopDelay?: LoopDelay;
  cpu?: ReturnType<CpuWindow['end']>;
}

export type RawFigures = { keysPerSecond: number; keysPerCpuSecond: number; keys: number; keyTimeCv: number };

/** The mean of several measurements of the raw bound (and the keys they generated, together). */
export function meanRaw(runs: RawFigures[]): RawFigures {
  const mean = (f: (r: RawFigures) => number) => round(runs.reduce((s, r) => s + f(r), 0) / runs.length);
  return {
    keysPerSecond: mean((r) => r.keysPerSecond),
    keysPerCpuSecond: mean((r) => r.keysPerCpuSecond),
    keys: runs.reduce((s, r) => s + r.keys, 0),
    keyTimeCv: mean((r) => r.keyTimeCv),
  };
}

/**
 * A sustained run set against the raw bound: its ratio, and its CPU efficiency (the CPU its
 * certificates' keys need at the raw cost per key / the CPU our processes, bench included, used).
 */
export function againstRaw(r: SustainedRun, raw: RawFigures) {
  return {
    ...ratioToRaw(r.perSecond, r.ok, raw),
    rawKeysPerSecond: raw.keysPerSecond,
    cpu: r.cpu && {
      ...r.cpu,
      efficiency: round(r.ok / raw.keysPerCpuSecond / r.cpu.oursCpuSeconds, 3),
      ...cpuPerCertificate(r.cpu, r.ok, raw),
    },
  };
}

/**
 * CPU per certificate, ms: each of our processes' (bench client included), all of them together, and
 * the part that is not the key (all of them less one key at the raw bound's CPU cost).
 */
function cpuPerCertificate(cpu: NonNullable<SustainedRun['cpu']>, ok: number, raw: RawFigures) {
  if (ok === 0) return {};
  const ms = (cpuSeconds: number) => round((cpuSeconds * 1000) / ok, 2);
  const total = ms(cpu.oursCpuSeconds);
  return {
    msPerCertificate: Object.fromEntries([
      ...Object.entries(cpu.byProcess).map(([n, s]) => [n, ms(s)]),
      ...Object.entries(cpu.workerMainThreads).map(([n, s]) => [`${n} main thread`, ms(s)]),
    ]),
    totalMsPerCertificate: total,
    overheadMsPerCertificate: round(total - 1000 / raw.keysPerCpuSecond, 2),
  };
}

/**
 * `perSecond` (from `keys` certificates) over the bound, and one standard error of that ratio from
 * key-to-key variation alone: a count of N keys whose times vary by `keyTimeCv` is known to about
 * cv/√N, in the run and in the bound alike.
 */
export function ratioToRaw(perSecond: number, keys: number, raw: RawFigures) {
  const ratio = perSecond / raw.keysPerSecond;
  return {
    ratioToRaw: round(ratio, 3),
    ratioStdErr: round(ratio * raw.keyTimeCv * Math.sqrt(1 / Math.max(1, keys) + 1 / raw.keys), 3),
  };
}
