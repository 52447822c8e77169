/** What {@link withTimeout} resolves with when the time ran out first. */
export const TIMED_OUT: unique symbol = Symbol('timed out');

/**
 * `p`'s outcome, or {@link TIMED_OUT} once `ms` have passed first. `p` itself keeps running; its
 * rejection (if it comes first) is passed on, so wrap it in `.catch()` to ignore failures too. The
 * timer never holds the process open and is cleared as soon as either side settles.
 */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), Math.max(0, ms));
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
