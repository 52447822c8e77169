import { systemClock, type Clock } from '../shared/clock.js';
import type { WorkClass } from '../shared/scheduler.js';
import { generateRsaKey, type KeySource, type RsaKey } from './key-source.js';

export interface KeyPoolOptions {
  /** Keys kept ready; the pool refills up to this many. */
  size: number;
  /**
   * Refill generations run at once while nobody waits for a key. Each occupies one libuv thread and
   * one core for ~200 ms, so keep it well below the core count: refilling uses spare CPU, not the CPU
   * that waiting requests need. Default 1.
   */
  refillParallelism?: number;
  /**
   * Keys kept for accounts with little in flight: a job of an account that had {@link BUSY_IN_FLIGHT} or
   * more interactive jobs before it takes a pooled key only while more than this many are ready, else it
   * generates its own, as a bulk job does. So a flooding account cannot empty the pool that a polite
   * account's Generate is answered from, while a burst still takes the rest. Default `size / 8` (at
   * least 1 once `size` is 2 or more).
   */
  reserve?: number;
  /** Where keys come from; tests pass smaller keys. Default: native RSA-2048. */
  generate?: () => Promise<RsaKey>;
  /**
   * Refilling waits until no key has been taken for this long, ms. A burst is then answered without a
   * refill competing for the cores it runs on; refilling starts once it is over. Default 100.
   */
  refillDelayMs?: number;
  /** Told about a failed generation (the pool retries after `retryDelayMs`). */
  onError?: (err: unknown) => void;
  /** Pause before refilling again after a failed generation, ms. Default 1000. */
  retryDelayMs?: number;
  /** Time for the refill delay and the retry pause; default the system clock. */
  clock?: Clock;
}

export interface KeyPoolStats {
  /** Keys ready now. */
  ready: number;
  /** Generations running now (for waiters, for refilling and bulk jobs' own). */
  generating: number;
  /** take() calls waiting for a key. */
  waiting: number;
  /** take() calls answered from the pool without waiting, since start. */
  hits: number;
  /** take() calls that had to wait for a generation, since start. */
  misses: number;
}

interface Waiter {
  resolve: (key: RsaKey) => void;
  reject: (err: unknown) => void;
}

/** An account with this many interactive jobs waiting or running before a job is busy (see `reserve`). */
export const BUSY_IN_FLIGHT = 2;

/**
 * A {@link KeySource} that keeps up to `size` pre-generated RSA keys in memory, so a burst is answered
 * in the time of a signature instead of a key generation.
 *
 * Rules:
 * - A key leaves the pool exactly once (shifted out of the array, never put back): each certificate
 *   gets a key nobody else ever saw.
 * - Keys live only in this process's memory: a crash loses the unused ones and nothing else.
 * - Waiting takes come first. Every waiter has a generation running for it (a refill already under
 *   way counts, since it finishes soonest); a finished key goes to the oldest waiter before the pool;
 *   no refill starts while anyone waits.
 * - Refilling runs at most `refillParallelism` generations at once, only while nobody waits and once
 *   no key has been taken for `refillDelayMs`.
 * - Pooled keys are for callers who wait (interactive jobs). A bulk job takes one only from a full
 *   pool (a surplus: its refill starts at once); otherwise it generates its own key outside the pool
 *   and its waiters, so a bulk batch never empties the pool and a caller's burst after it is still
 *   answered in signing time. Bulk takes do not delay refilling.
 * - The last `reserve` keys are for accounts with little in flight: a job of a busy account (one with
 *   {@link BUSY_IN_FLIGHT} or more interactive jobs before it) that finds no more than that generates
 *   its own key as a bulk job does, without delaying refilling, so the pool refills beside a flood and a
 *   polite account's Generate is still answered in signing time.
 */
export class KeyPool implements KeySource {
  private readonly keys: RsaKey[] = [];
  private readonly waiters: Waiter[] = [];
  private readonly size: number;
  private readonly reserve: number;
  private readonly refillParallelism: number;
  private readonly generate: () => Promise<RsaKey>;
  private readonly onError: (err: unknown) => void;
  private readonly retryDelayMs: number;
  private readonly refillDelayMs: number;
  private readonly clock: Clock;
  private lastTake = 0;
  private cancelRefill: (() => void) | undefined;
  private readonly running = new Set<Promise<void>>();
  /** Jobs' own generations (bulk, busy accounts; outside the pool): waited for by close(), counted as generating. */
  private readonly ownRunning = new Set<Promise<unknown>>();
  private closed = false;
  private backoffUntil = 0;
  private cancelBackoff: (() => void) | undefined;
  private hits = 0;
  private misses = 0;

  constructor(opts: KeyPoolOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 0)
      throw new RangeError('size must be a whole number ≥ 0');
    this.size = opts.size;
    this.reserve = Math.min(
      opts.size,
      opts.reserve ?? (opts.size >= 2 ? Math.max(1, Math.floor(opts.size / 8)) : 0),
    );
    this.refillParallelism = Math.max(1, opts.refillParallelism ?? 1);
    this.generate = opts.generate ?? (() => generateRsaKey());
    this.onError = opts.onError ?? (() => undefined);
    this.retryDelayMs = opts.retryDelayMs ?? 1000;
    this.refillDelayMs = opts.refillDelayMs ?? 100;
    this.clock = opts.clock ?? systemClock;
    this.pump();
  }

  /**
   * The next unused key: from the pool at once, or the first generation to finish. A bulk job gets a
   * pooled key only from a full pool, and a busy account's job (`inFlight` ≥ {@link BUSY_IN_FLIGHT})
   * only while more than the reserve is ready; else each gets a generation of its own.
   */
  take(cls: WorkClass = 'interactive', inFlight = 0): Promise<RsaKey> {
    if (this.closed) return Promise.reject(new Error('key pool is closed'));
    if (cls === 'bulk' && (this.keys.length === 0 || this.keys.length < this.size)) return this.own();
    if (cls === 'interactive' && inFlight >= BUSY_IN_FLIGHT && this.keys.length <= this.reserve) {
      // A busy account's job, and only the reserve is left: it is kept for the others.
      this.misses++;
      return this.own();
    }
    if (cls === 'bulk') {
      this.hits++;
      const key = this.keys.shift()!;
      this.pump();
      return Promise.resolve(key);
    }
    this.lastTake = this.clock.now();
    const key = this.keys.shift();
    if (key) {
      this.hits++;
      this.pump();
      return Promise.resolve(key);
    }
    this.misses++;
    return new Promise<RsaKey>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.pump();
    });
  }

  /** A generation of a job's own, outside the pool and its waiters; it does not delay refilling. */
  private own(): Promise<RsaKey> {
    const p = this.generate();
    const tracked = p.catch(() => undefined).finally(() => this.ownRunning.delete(tracked));
    this.ownRunning.add(tracked);
    return p;
  }

  /**
   * Stops refilling and drops the unused keys. Generations already running finish (waiters still get
   * theirs); resolves when they have.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelBackoff?.();
    this.cancelRefill?.();
    this.keys.length = 0;
    while (this.running.size > 0 || this.ownRunning.size > 0) {
      await Promise.allSettled([...this.running, ...this.ownRunning]);
    }
  }

  stats(): KeyPoolStats {
    return {
      ready: this.keys.length,
      generating: this.running.size + this.ownRunning.size,
      waiting: this.waiters.length,
      hits: this.hits,
      misses: this.misses,
    };
  }

  /** Starts the generations the rules above call for. */
  private pump(): void {
    // Waiters: one generation each, whatever the refill limit and even during a backoff (a request is
    // waiting; its failure is reported to it).
    while (this.running.size < this.waiters.length) this.startOne();
    if (this.closed || this.waiters.length > 0) return;
    if (this.clock.now() < this.backoffUntil) return;
    const missing = this.size - this.keys.length;
    if (missing <= 0 || this.running.size >= this.refillParallelism) return;
    const quietFor = this.clock.now() - this.lastTake;
    if (quietFor < this.refillDelayMs) {
      // Still in a burst: look again once it has been quiet long enough.
      this.cancelRefill ??= this.clock.after(this.refillDelayMs - quietFor, () => {
        this.cancelRefill = undefined;
        this.pump();
      });
      return;
    }
    while (this.running.size < Math.min(missing, this.refillParallelism)) this.startOne();
  }

  private startOne(): void {
    const p: Promise<void> = this.generate().then(
      (key) => {
        this.running.delete(p);
        const waiter = this.waiters.shift();
        if (waiter) waiter.resolve(key);
        else if (!this.closed && this.keys.length < this.size) this.keys.push(key);
        // else: a waiter was served by another generation and the pool is full; the key is dropped
        // unused, which is safe (it was never handed out).
        this.pump();
      },
      (err: unknown) => {
        this.running.delete(p);
        this.onError(err);
        const waiter = this.waiters.shift();
        if (waiter) waiter.reject(err);
        this.backoffUntil = this.clock.now() + this.retryDelayMs;
        this.cancelBackoff?.();
        // The timer ends the pause: pump() must not ask the clock, whose wall time can still read a
        // little before backoffUntil when the timer (on the monotonic clock) fires; it would then never retry.
        this.cancelBackoff = this.clock.after(this.retryDelayMs, () => {
          this.backoffUntil = 0;
          this.pump();
        });
        this.pump();
      },
    );
    this.running.add(p);
  }
}
