import type { Clock } from '../../shared/clock.js';

/** A {@link Clock} that moves only when the test says so. */
export interface ManualClock extends Clock {
  /** Moves time forward by `ms`, running each timer that falls due, in order, at its own time. */
  advance(ms: number): void;
  /** How far `now()` reads behind the timers' time (a wall clock lagging the monotonic one), ms. */
  lag: number;
}

export function manualClock(start = 1_000_000): ManualClock {
  let time = start;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock: ManualClock = {
    lag: 0,
    now: () => time - clock.lag,
    after(ms, fn) {
      const id = seq++;
      timers.set(id, { at: time + ms, fn });
      return () => void timers.delete(id);
    },
    advance(ms) {
      const until = time + ms;
      for (;;) {
        const due = [...timers]
          .filter(([, t]) => t.at <= until)
          .sort(([a, x], [b, y]) => x.at - y.at || a - b)[0];
        if (!due) break;
        timers.delete(due[0]);
        time = due[1].at;
        due[1].fn();
      }
      time = until;
    },
  };
  return clock;
}

/** Lets promise callbacks and I/O that are ready run. */
export const settle = () => new Promise<void>((r) => setImmediate(r));
