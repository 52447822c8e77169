/** Time as a component sees it, so tests can move it by hand instead of sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once after `ms`, without keeping the process alive; returns a function that cancels it. */
  after(ms: number, fn: () => void): () => void;
}

/** The real clock: `Date.now()` and unref'd timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
