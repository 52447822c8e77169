// A node:test reporter (`--test-reporter=./devtools/test-durations.ts`) for devtools/run-tests.ts: one JSON line per
// finished test or suite, written as it finishes (so a phase stopped at its time limit still says what it did).
import type { TestEvent } from 'node:test/reporters';

/** One finished test or suite, as devtools/run-tests.ts reads it. */
export interface Finished {
  outcome: 'pass' | 'fail' | 'skip' | 'todo';
  suite: boolean;
  nesting: number;
  file: string;
  ms: number;
}

export default async function* durations(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const { data } = event;
    const finished: Finished = {
      outcome:
        event.type === 'test:fail' // cancelled and timed-out ones too
          ? 'fail'
          : data.skip !== undefined
            ? 'skip'
            : data.todo !== undefined
              ? 'todo'
              : 'pass',
      suite: data.details.type === 'suite',
      nesting: data.nesting,
      file: data.file ?? '(unknown file)',
      ms: data.details.duration_ms,
    };
    yield `${JSON.stringify(finished)}\n`;
  }
}
