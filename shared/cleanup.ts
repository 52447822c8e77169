import { withTimeout } from './timeout.js';

/**
 * A process's (or a component's) ordered cleanup list: the steps run once, one after another in the
 * order they were added, so the list reads as the shutdown sequence. A step that throws does not stop
 * the ones after it; the first such error is thrown once all have run.
 */
export class Cleanup {
  private readonly steps: { name: string; run: () => unknown }[] = [];
  private running: Promise<void> | undefined;

  /**
   * Adds a step at the end; `name` says what it releases (for readers and errors). With `boundMs`, the
   * step is waited for at most that long and its failure ignored: for what needs a Redis that may be
   * away and never come back.
   */
  add(name: string, run: () => unknown, opts: { boundMs?: number } = {}): this {
    const { boundMs } = opts;
    const step =
      boundMs === undefined
        ? run
        : () =>
            withTimeout(
              Promise.resolve()
                .then(run)
                .catch(() => undefined),
              boundMs,
            );
    this.steps.push({ name, run: step });
    return this;
  }

  /** Runs the steps (once: later calls return the same promise). */
  run(): Promise<void> {
    this.running ??= (async () => {
      let first: unknown;
      for (const step of this.steps) {
        try {
          await step.run();
        } catch (err) {
          first ??= new Error(`cleanup step "${step.name}" failed`, { cause: err });
        }
      }
      if (first !== undefined) throw first;
    })();
    return this.running;
  }
}
