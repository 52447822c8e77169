// A node:test reporter (`--test-reporter=./devtools/test-durations.ts`) for devtools/run-tests.ts: counts the
// outcomes and adds up each file's top-level test and suite durations, and writes them as one JSON object.
import type { TestEvent } from 'node:test/reporters';

/** What one phase of `npm test` reports to devtools/run-tests.ts. */
export interface PhaseReport {
  passed: number;
  failed: number;
  skipped: number;
  todo: number;
  /** Test file → milliseconds spent in its top-level tests and suites (hooks included). */
  files: Record<string, number>;
}

export default async function* durations(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  const report: PhaseReport = { passed: 0, failed: 0, skipped: 0, todo: 0, files: {} };
  const failedTests = new Set<string>(); // files with a failed test
  const failedTopLevel = new Set<string>(); // files with a failed top-level test or suite
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    const file = data.file ?? '(unknown file)';
    if (data.details.type !== 'suite') {
      if (event.type === 'test:fail') {
        report.failed++; // cancelled and timed-out tests too
        failedTests.add(file);
      } else if (data.skip !== undefined) report.skipped++;
      else if (data.todo !== undefined) report.todo++;
      else report.passed++;
    }
    if (data.nesting === 0) {
      if (event.type === 'test:fail') failedTopLevel.add(file);
      report.files[file] = (report.files[file] ?? 0) + data.details.duration_ms;
    }
  }
  // A suite or file that failed by itself (a hook threw, it timed out, it crashed) without a failed test in it.
  for (const file of failedTopLevel) if (!failedTests.has(file)) report.failed++;
  yield `${JSON.stringify(report)}\n`;
}
