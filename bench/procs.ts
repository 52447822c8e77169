import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

/** A service process the bench started: `node dist/<entry>.js`, output to a log file. */
export interface ServiceProcess {
  name: string;
  pid: number;
  proc: ChildProcess;
  logFile: string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/** The processes the bench runs, built by `npm run build` (scripts/build.mjs) into dist/. */
export type Entry = 'api/main' | 'worker/main' | 'bench/bare-hono';

/**
 * Starts `entry` from dist/ as its own node process, as `npm start` and the Docker image run it:
 * plain JavaScript, no loader; one pid to measure.
 */
export function startProcess(
  name: string,
  entry: Entry,
  env: NodeJS.ProcessEnv,
  logFile: string,
): ServiceProcess {
  const fd = openSync(logFile, 'a');
  const proc = spawn(process.execPath, ['--enable-source-maps', join(DIST, `${entry}.js`)], {
    env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    name,
    pid: proc.pid!,
    proc,
    logFile,
    async stop(graceMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A line of /proc/PID/status in kB (VmRSS, VmHWM), or undefined once the process is gone. */
export function procStatusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU time the process has used (user + system), in clock ticks (USER_HZ, 100 on Linux); with
 * `mainThread`, only its main thread's (a worker's key generations run on other threads).
 */
export function cpuTicks(pid: number, mainThread = false): number | undefined {
  try {
    const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
  } catch {
    return undefined;
  }
}

export const TICKS_PER_SECOND = 100;

/** CPU time the whole machine has spent busy (all but idle and iowait), in clock ticks. */
export function machineBusyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return user + nice + system + irq + softirq + steal;
}

/** The pid of the redis-server listening on `port`, found in /proc (the test helper does not expose it). */
export function redisServerPid(port: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes('redis-server') && cmd.includes(`:${port}`)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/**
 * CPU accounting over a window: how much CPU our processes used and how much the rest of the machine
 * used meanwhile (other people's work on a shared machine), in cores.
 */
export class CpuWindow {
  private readonly start: Map<string, number>;
  private readonly startMain: Map<string, number>;
  private readonly machine0: number;
  private readonly t0 = performance.now();

  /** @param pids our processes by name */
  constructor(private readonly pids: Record<string, number>) {
    this.start = this.sample();
    this.startMain = this.sample(true);
    this.machine0 = machineBusyTicks();
  }

  private sample(mainThread = false): Map<string, number> {
    return new Map(Object.entries(this.pids).map(([name, pid]) => [name, cpuTicks(pid, mainThread) ?? 0]));
  }

  end(): {
    seconds: number;
    oursCpuSeconds: number;
    oursCores: number;
    otherCores: number;
    /** CPU-seconds per process name. */
    byProcess: Record<string, number>;
    /** CPU-seconds of each worker process's main thread (everything but its key generations). */
    workerMainThreads: Record<string, number>;
  } {
    const seconds = (performance.now() - this.t0) / 1000;
    const now = this.sample();
    const nowMain = this.sample(true);
    const r = (x: number) => Math.round(x * 100) / 100;
    const byProcess: Record<string, number> = {};
    let ours = 0;
    for (const [name, ticks] of now) {
      const used = (ticks - (this.start.get(name) ?? 0)) / TICKS_PER_SECOND;
      byProcess[name] = r(used);
      ours += used;
    }
    const workerMainThreads: Record<string, number> = {};
    for (const [name, ticks] of nowMain) {
      if (name.startsWith('worker')) {
        workerMainThreads[name] = r((ticks - (this.startMain.get(name) ?? 0)) / TICKS_PER_SECOND);
      }
    }
    const machine = (machineBusyTicks() - this.machine0) / TICKS_PER_SECOND;
    return {
      workerMainThreads,
      seconds: r(seconds),
      oursCpuSeconds: r(ours),
      oursCores: r(ours / seconds),
      otherCores: r(Math.max(0, machine - ours) / seconds),
      byProcess,
    };
  }
}

/**
 * Waits until the processes together use less than `maxCores` of CPU over a 1 s window: for workers,
 * that their key pools are full and they are idle. Gives up after `timeoutMs` and says so.
 * @returns true when quiet, false on timeout.
 */
export async function waitQuiet(pids: number[], maxCores = 0.1, timeoutMs = 60_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  const total = () => pids.reduce((s, p) => s + (cpuTicks(p) ?? 0), 0);
  while (Date.now() < until) {
    const a = total();
    const t = performance.now();
    await sleep(1000);
    const used = (total() - a) / TICKS_PER_SECOND / ((performance.now() - t) / 1000);
    if (used < maxCores) return true;
  }
  return false;
}

/** Samples VmRSS of named processes every `everyMs`, keeping the peak of each per phase. */
export class RssSampler {
  private readonly peaks = new Map<string, number>();
  private readonly pids = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(everyMs = 250) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  track(name: string, pid: number): void {
    this.pids.set(name, pid);
  }

  untrack(name: string): void {
    this.pids.delete(name);
  }

  /** Peaks since the previous call, MB, then starts a new phase. */
  takePeaks(): Record<string, number> {
    this.sample();
    const out: Record<string, number> = {};
    for (const [name, kb] of this.peaks) out[name] = Math.round(kb / 102.4) / 10;
    this.peaks.clear();
    return out;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    for (const [name, pid] of this.pids) {
      const kb = procStatusKb(pid, 'VmRSS');
      if (kb !== undefined) this.peaks.set(name, Math.max(this.peaks.get(name) ?? 0, kb));
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
