import type { Keys } from '../shared/keys.js';
import type { Logger } from '../shared/logger.js';
import { createQueue } from '../shared/queue.js';
import { duplicateRedis, type RedisClient } from '../shared/redis.js';
import { TIMED_OUT, withTimeout } from '../shared/timeout.js';

/** How long the watchdog waits for its probe's answer at most, ms. */
export const WATCHDOG_PROBE_TIMEOUT_MS = 3000;

/** What the watchdog saw at one tick. */
export interface WatchdogSample {
  now: number;
  /** `worker.isRunning()`: false once BullMQ's main loop has ended. */
  running: boolean;
  /** Jobs waiting in the queue, or undefined when Redis did not answer (nothing can be concluded). */
  waiting: number | undefined;
  /** Jobs this worker is running. */
  active: number;
  concurrency: number;
  /** When this worker last started or finished a job (or was created), epoch ms. */
  lastActivity: number;
  /** Since when jobs have been waiting while this worker sat idle with free capacity, if they have. */
  idleSince: number | undefined;
}

/**
 * The watchdog's decision, pure so it can be tested without a stuck worker. A worker is stuck when
 * its main loop has ended, or when jobs have been waiting for at least `graceMs` while it had free
 * capacity and neither started nor finished a job: a healthy idle worker takes a waiting job within
 * milliseconds, so it is not merely slow. (BullMQ issues 648, 2466, 2964, 3185: after a Redis
 * restart workers were seen to stay connected and take nothing.)
 *
 * @returns the reason to replace the worker (or undefined), and the new `idleSince`.
 */
export function watchdogVerdict(
  s: WatchdogSample,
  graceMs: number,
): { stuck?: string; idleSince: number | undefined } {
  if (!s.running) return { stuck: 'main loop has stopped', idleSince: undefined };
  if (s.waiting === undefined) return { idleSince: s.idleSince };
  const starving = s.waiting > 0 && s.active < s.concurrency && s.now - s.lastActivity >= graceMs;
  if (!starving) return { idleSince: undefined };
  const idleSince = s.idleSince ?? s.now;
  if (s.now - idleSince >= graceMs) {
    return { stuck: `${s.waiting} job(s) waiting while idle for ${s.now - s.lastActivity} ms`, idleSince };
  }
  return { idleSince };
}

export interface Watchdog {
  /** Stops ticking (a tick under way draws no verdict). */
  stop(): void;
  /** Releases its view of the queue and its connection (bounded). */
  close(): Promise<void>;
}

/**
 * Every `intervalMs` (0: never), looks at the BullMQ worker and the queue and calls `replace` when
 * {@link watchdogVerdict} finds the worker stuck.
 */
export function startWatchdog(o: {
  id: string;
  redis: RedisClient;
  keys: Keys;
  log: Logger;
  intervalMs: number;
  concurrency: number;
  /** The worker as it is now: main loop running, jobs active, last start or finish. */
  worker: () => { running: boolean; active: number; lastActivity: number };
  /** Replaces the BullMQ worker (the verdict's reason); the watchdog forgets its idle time. */
  replace: (reason: string) => void;
}): Watchdog {
  const { log } = o;
  // The watchdog's own view of the queue, on its own connection and judged by its own timed probe:
  // on a connection shared with the worker, a half-open socket would hang the query and leave the
  // watchdog without a verdict for as long as the worker is stuck (minutes, on TCP's retransmissions).
  const probeMs = Math.min(Math.max(1000, o.intervalMs), WATCHDOG_PROBE_TIMEOUT_MS);
  const probeRedis = duplicateRedis(o.redis, `${o.id}-watchdog`);
  probeRedis.on('error', (err) => log.debug({ err }, 'watchdog redis connection error'));
  const queue = createQueue(probeRedis, o.keys, (err) => log.debug({ err }, 'watchdog queue error'));
  let unansweredSince: number | undefined;
  let idleSince: number | undefined;
  let ticking = false;
  let stopped = false;

  const tick = async () => {
    if (ticking || stopped) return;
    ticking = true;
    try {
      const running = o.worker().running;
      let waiting: number | undefined;
      if (running) {
        // Bounded: no answer in time, no verdict, and a fresh connection for the next probe.
        const counted = await withTimeout(
          // Jobs with a priority (all that the scheduler enqueues) wait as `prioritized`.
          queue.getJobCountByTypes('waiting', 'prioritized').catch(() => undefined),
          probeMs,
        );
        waiting = counted === TIMED_OUT ? undefined : counted;
      }
      if (stopped) return;
      if (running && waiting === undefined) {
        if (unansweredSince === undefined) {
          unansweredSince = Date.now();
          log.warn({ probeMs }, 'watchdog: no answer from Redis; reconnecting its probe');
        }
        if (probeRedis.status === 'ready') probeRedis.disconnect(true);
      } else if (waiting !== undefined && unansweredSince !== undefined) {
        log.info({ unansweredMs: Date.now() - unansweredSince }, 'watchdog: Redis answers again');
        unansweredSince = undefined;
      }
      const { active, lastActivity } = o.worker();
      const verdict = watchdogVerdict(
        { now: Date.now(), running, waiting, active, concurrency: o.concurrency, lastActivity, idleSince },
        o.intervalMs,
      );
      idleSince = verdict.idleSince;
      if (verdict.stuck) {
        o.replace(verdict.stuck);
        idleSince = undefined;
      }
    } finally {
      ticking = false;
    }
  };
  const timer = o.intervalMs > 0 ? setInterval(() => void tick(), o.intervalMs) : undefined;
  timer?.unref();
  return {
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
    },
    async close() {
      await withTimeout(
        queue.close().catch(() => undefined),
        2000,
      );
      probeRedis.disconnect();
    },
  };
}
