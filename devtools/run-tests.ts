// `npm test`: every test/*.test.ts, in two phases (docs/testing.md).
//   1. parallel: every file not listed in SERIAL, TEST_CONCURRENCY files at a time (each file starts its own Redis,
//      services and ports, so files do not share state);
//   2. serial: the few files in SERIAL, one at a time, beside phase 1 but first in line for the CPU: phase 1 runs
//      at nice 10 (TEST_PARALLEL_NICE), phase 2 at normal priority, so it has the CPU to itself whenever it wants
//      it; its output is printed when both have ended. TEST_SERIAL_AFTER=1 runs it after phase 1 instead.
// Before both, the service is transpiled once (scripts/build.mjs) and tests start its programs as plain JavaScript
// (devtools/entry.ts, CC_TEST_BUILD).
// A file added to test/ runs in the parallel phase unless it is added to SERIAL.
//
//   npm test                              both phases
//   npm test -- test/a.test.ts ...        only those files, each in its phase
//   TEST_CONCURRENCY=1 npm test           phase 1 one file at a time too
//
// Bounds, so that nothing hangs CI: each top-level test or suite (on Node 22: each file) fails after
// TEST_TIMEOUT_MS (default 300 s); a file's process exits once its tests are done even if a handle is left open
// (--test-force-exit); a phase still running after PHASE_LIMIT_MS (default 30 min) is killed and fails.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Finished } from './test-durations.js';

/**
 * Files that need the machine to themselves, run one at a time ahead of the rest: they stall or kill Redis
 * under load and assert recovery within seconds, or assert timings that a loaded machine would stretch.
 */
export const SERIAL: readonly string[] = [
  'test/failover-cluster.test.ts', // a 6-node Redis Cluster under load, a master SIGSTOPped and killed
  'test/failover-sentinel.test.ts', // a primary, 2 replicas and 3 Sentinels under load, the primary killed
  'test/failover-ca.test.ts', // CA mode: two 6-node Redis Clusters, the {prefix} shard cut off and its master killed
  'test/durable-ack.test.ts', // replicas stalled (SIGSTOP) while WAIT must time out and succeed in bounds
  'test/partitions.test.ts', // network partitions: a dead connection found, and 201s again, within seconds
];

const ROOT = join(import.meta.dirname, '..');
// V8's compiled code for every module, kept on disk and shared by every Node.js process of the run (test files, the
// API, workers, CLIs: several hundred starts, each loading BullMQ, ioredis, node-forge, pino, Hono and our modules).
// Node.js writes an entry once and checks it against the source before use. Two runs of npm test on one machine,
// taking turns with two without: 448 and 449 CPU-s against 487 and 530, 244 and 246 s against 264 and 287 s
// (docs/testing.md). A value already set is kept; NODE_DISABLE_COMPILE_CACHE=1 npm test runs without it.
process.env.NODE_COMPILE_CACHE ??= join(ROOT, 'node_modules', '.cache', 'node-compile-cache');
const concurrency = Number(process.env.TEST_CONCURRENCY ?? Math.max(2, availableParallelism() * 2));
const timeoutMs = Number(process.env.TEST_TIMEOUT_MS ?? 300_000);
const phaseLimitMs = Number(process.env.PHASE_LIMIT_MS ?? 30 * 60_000);
/** The parallel phase's niceness while the serial files run beside it (see below). */
const PARALLEL_NICE = Number(process.env.TEST_PARALLEL_NICE ?? 10);

const out = (line: string) => process.stdout.write(`${line}\n`);
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

const given = process.argv.slice(2).map((f) => relative(ROOT, join(process.cwd(), f)));
const all = readdirSync(join(ROOT, 'test'))
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => `test/${f}`)
  .sort();
const files = given.length > 0 ? given : all;

/** What one phase ran. */
interface PhaseReport {
  passed: number;
  failed: number;
  skipped: number;
  todo: number;
  /** Test file → milliseconds spent in its top-level tests and suites (hooks included). */
  files: Record<string, number>;
}

/**
 * Adds up the reporter's lines: tests by outcome, and each file's top-level durations. A file of `phaseFiles`
 * that reported no test at all counts as a failure: its results were lost (see devtools/test-stdout.ts).
 */
function summarize(lines: Finished[], phaseFiles: string[]): PhaseReport {
  const report: PhaseReport = { passed: 0, failed: 0, skipped: 0, todo: 0, files: {} };
  const failedTests = new Set<string>(); // files with a failed test
  const failedTopLevel = new Set<string>(); // files with a failed top-level test or suite
  for (const f of lines) {
    if (!f.suite) {
      if (f.outcome === 'fail') failedTests.add(f.file);
      report[({ pass: 'passed', fail: 'failed', skip: 'skipped', todo: 'todo' } as const)[f.outcome]]++;
    }
    if (f.nesting === 0) {
      if (f.outcome === 'fail') failedTopLevel.add(f.file);
      report.files[f.file] = (report.files[f.file] ?? 0) + f.ms;
    }
  }
  // A suite or file that failed by itself (a hook threw, it timed out, it crashed) without a failed test in it.
  for (const file of failedTopLevel) if (!failedTests.has(file)) report.failed++;
  for (const f of phaseFiles) {
    if (report.files[join(ROOT, f)] !== undefined) continue;
    out(`== ${f} reported no test: counted as failed`);
    report.failed++;
  }
  return report;
}

interface PhaseResult {
  name: string;
  files: number;
  ms: number;
  code: number | null;
  report: PhaseReport | undefined;
}

interface PhaseOptions {
  /** Run the phase's processes at this niceness (through coreutils' `nice`), so others come first. */
  nice?: number;
  /** Keep its spec output until `printHeld` instead of writing it as it comes. */
  hold?: boolean;
}

/** Spec output of held phases, printed once the phases running beside them have ended. */
const held: string[] = [];
function printHeld(): void {
  for (const text of held.splice(0)) process.stdout.write(text);
}

/**
 * Runs one `node --test` over `phaseFiles`, its spec output on stdout (or held, see {@link PhaseOptions});
 * resolves with what it reported.
 */
async function phase(
  name: string,
  phaseFiles: string[],
  filesAtOnce: number,
  o: PhaseOptions = {},
): Promise<PhaseResult> {
  if (phaseFiles.length === 0) return { name, files: 0, ms: 0, code: 0, report: undefined };
  const dir = mkdtempSync(join(tmpdir(), 'cc-test-run-'));
  const reportFile = join(dir, 'report.json');
  const specFile = join(dir, 'spec.txt');
  const how = `${filesAtOnce} at a time${o.nice ? `, at nice ${o.nice}` : ''}`;
  const heading = `\n== ${name} phase: ${phaseFiles.length} files, ${how} (load average ${load()})`;
  out(o.hold ? `${heading}; its output follows when it has ended` : heading);
  const started = Date.now();
  const node = [
    process.execPath,
    ...[
      '--import',
      'tsx',
      '--import',
      './devtools/test-stdout.ts',
      '--test',
      `--test-concurrency=${filesAtOnce}`,
      `--test-timeout=${timeoutMs}`,
      '--test-force-exit',
      '--test-reporter=spec',
      `--test-reporter-destination=${o.hold ? specFile : 'stdout'}`,
      '--test-reporter=./devtools/test-durations.ts',
      `--test-reporter-destination=${reportFile}`,
      ...phaseFiles,
    ],
  ];
  const [command, ...args] = o.nice ? ['nice', '-n', String(o.nice), ...node] : node;
  // Its own process group, so that a phase past its limit is stopped with everything it started.
  const child = spawn(command!, args, {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  const limit = setTimeout(() => {
    out(`\n== ${name} phase still running after ${phaseLimitMs / 1000} s: stopped`);
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }, phaseLimitMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(limit);
  let report: PhaseReport | undefined;
  try {
    const lines = readFileSync(reportFile, 'utf8').split('\n').filter(Boolean);
    report = summarize(
      lines.map((l) => JSON.parse(l) as Finished),
      phaseFiles,
    );
  } catch {
    report = undefined; // stopped before the reporter wrote anything: counted as a failure below
  }
  if (o.hold) {
    let text = '';
    try {
      text = readFileSync(specFile, 'utf8');
    } catch {
      // stopped before the reporter wrote anything
    }
    held.push(`${heading}, ended after ${((Date.now() - started) / 1000).toFixed(0)} s:\n${text}`);
  }
  rmSync(dir, { recursive: true, force: true });
  return { name, files: phaseFiles.length, ms: Date.now() - started, code, report };
}

const started = Date.now();
// The service's programs, transpiled once for the whole run: tests spawn them as plain JavaScript
// (devtools/entry.ts), about 1 CPU-s less per process start than through tsx. Inside node_modules so that
// the built files resolve the project's packages; one folder per run, removed at the end.
const build = join(ROOT, 'node_modules', '.cache', `cc-test-build-${process.pid}`);
const built = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), '--outdir', build], {
  cwd: ROOT,
  stdio: 'inherit',
});
if (built.status !== 0) {
  out('== npm test: scripts/build.mjs failed: the tree does not transpile');
  process.exit(1);
}
process.env.CC_TEST_BUILD = build;
process.once('exit', () => rmSync(build, { recursive: true, force: true }));
const serialSet = new Set(SERIAL);
const parallelFiles = files.filter((f) => !serialSet.has(f));
const serialFiles = files.filter((f) => serialSet.has(f));
// The serial files run beside the parallel phase, one at a time at normal priority, while the parallel
// phase runs at PARALLEL_NICE: the kernel gives the serial file the CPU whenever it wants it (a nice-10 process
// weighs about a tenth of a nice-0 one), and the parallel phase takes what it leaves (they wait on failovers,
// holds and timeouts most of the time). TEST_SERIAL_AFTER=1 runs them after the parallel phase instead.
const results: PhaseResult[] = [];
if (process.env.TEST_SERIAL_AFTER === '1' || parallelFiles.length === 0 || serialFiles.length === 0) {
  results.push(await phase('parallel', parallelFiles, concurrency));
  results.push(await phase('serial', serialFiles, 1));
} else {
  results.push(
    ...(await Promise.all([
      phase('parallel', parallelFiles, concurrency, { nice: PARALLEL_NICE }),
      phase('serial', serialFiles, 1, { hold: true }),
    ])),
  );
  printHeld();
}

out(`\n== npm test: ${((Date.now() - started) / 1000).toFixed(0)} s in all (load average now ${load()})`);
const total = { passed: 0, failed: 0, skipped: 0, todo: 0 };
for (const r of results) {
  if (r.files === 0) continue;
  const rep = r.report;
  const broken = r.code !== 0 && (rep?.failed ?? 0) === 0; // exited non-zero (or was killed) without a failure
  out(
    `   ${r.name}: ${r.files} files in ${(r.ms / 1000).toFixed(0)} s, ` +
      (rep ? `${rep.passed} passed, ${rep.failed} failed, ${rep.skipped} skipped` : 'no report') +
      (broken ? ` (exit ${r.code ?? 'by signal'})` : ''),
  );
  if (rep) {
    total.passed += rep.passed;
    total.failed += rep.failed;
    total.skipped += rep.skipped;
    total.todo += rep.todo;
    const slowest = Object.entries(rep.files)
      .sort((a, b) => b[1] - a[1])
      .slice(0, r.name === 'serial' ? 10 : 8)
      .map(([f, ms]) => `${relative(ROOT, f)} ${(ms / 1000).toFixed(1)} s`);
    out(`     slowest: ${slowest.join(', ')}`);
  }
  if (broken) total.failed++;
}
out(`tests: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exitCode = total.failed > 0 ? 1 : 0;
