/**
 * A process's (or a component's) ordered cleanup list: the steps run once, one after another in the
 * order they were added, so the list reads as the shutdown sequence. A step that throws does not stop
 * the ones after it; the first such error is thrown once all have run.
 */
export class Cleanup {
  private readonly steps: { name: string; run: () => unknown }[] = [];
  private running: Promise<void> | undefined;

  /** Adds a step at the end; `name` says what it releases (for readers and errors). */
  add(name: string, run: () => unknown): this {
    this.steps.push({ name, run });
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
