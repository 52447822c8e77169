/**
 * What the API bounds before it knows who is asking: the request target (length, query parameters),
 * and a per-address budget of requests that fail authentication. Every check here is linear in the
 * request's size and asks Redis nothing, so an unauthenticated flood costs little and cannot slow
 * down signed callers (docs/security.md, "Limits").
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError, TooManyRequestsError } from '../shared/errors.js';
import { lastFailed, markFailed } from './connection-guard.js';
import type { AppEnv } from './context.js';

/**
 * Longest request target (path and query, as sent) the API reads, bytes. Node's own limit on the request
 * line and headers together (16 KiB, 431) usually answers first; this holds when that one is raised.
 */
export const MAX_REQUEST_TARGET_BYTES = 16_384;
/** Most query parameters one request may carry (the SDK sends at most 8, presigned URLs included). */
export const MAX_QUERY_PARAMETERS = 64;

/** 414: the request line is longer than the API reads. */
export class UriTooLongError extends ApiError {
  constructor(length: number) {
    super(
      414,
      'UriTooLongException',
      `The request target is ${length} bytes long; at most ${MAX_REQUEST_TARGET_BYTES} are accepted. Shorten the path or query.`,
    );
  }
}

/** 400: more query parameters than any operation takes. */
export class TooManyQueryParametersError extends ApiError {
  constructor() {
    super(
      400,
      'BadRequestException',
      `The query has more than ${MAX_QUERY_PARAMETERS} parameters; at most ${MAX_QUERY_PARAMETERS} are accepted.`,
    );
  }
}

/**
 * Checks the request target of `url` (an absolute URL as Hono gives it) in one pass.
 * @throws UriTooLongError or TooManyQueryParametersError.
 */
export function checkRequestTarget(url: string): void {
  const schemeEnd = url.indexOf('//');
  const pathStart = schemeEnd < 0 ? 0 : url.indexOf('/', schemeEnd + 2);
  const targetLength = pathStart < 0 ? 0 : url.length - pathStart;
  if (targetLength > MAX_REQUEST_TARGET_BYTES) throw new UriTooLongError(targetLength);
  const q = url.indexOf('?', pathStart < 0 ? 0 : pathStart);
  if (q < 0) return;
  let params = 1;
  for (let i = url.indexOf('&', q); i >= 0; i = url.indexOf('&', i + 1)) {
    if (++params > MAX_QUERY_PARAMETERS) throw new TooManyQueryParametersError();
  }
}

export interface AuthFailureBudgetOptions {
  /** Failed authentications an address may make at once. 0 turns the budget off. */
  burst: number;
  /** Failed authentications per second an address earns back. */
  ratePerSecond: number;
  /** Addresses remembered at most; the longest-unseen are forgotten first. Default 10_000. */
  maxAddresses?: number;
  /**
   * How long a refusal to an address that has spent its budget is held before it is sent, ms (0: at
   * once). An HTTP/1.1 client waits for the answer before its next request on that connection, so a
   * flooding connection then costs a timer, not CPU. Default 1000.
   */
  delayMs?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const HELD = Symbol('held refusal');

/**
 * A token bucket per client address that only failed authentications spend. Once an address has
 * spent it, the penalty falls on its connections that fail, not on the address: a connection whose
 * last request failed gets 429 and `Retry-After` before anything of its next request is parsed, and
 * every refusal on such an address is held `delayMs` before it is sent (a tarpit), until the bucket
 * refills. A connection that authenticates, or a new one, is verified as usual, so a signed client
 * behind the same address is not slowed. Per process and in memory, like the dashboard's login
 * backoff. IPv6 addresses count per /64, what one host is usually given.
 */
export class AuthFailureBudget {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxAddresses: number;
  private readonly now: () => number;
  readonly delayMs: number;

  constructor(readonly options: AuthFailureBudgetOptions) {
    this.maxAddresses = options.maxAddresses ?? 10_000;
    this.now = options.now ?? Date.now;
    this.delayMs = options.delayMs ?? 1000;
  }

  get enabled(): boolean {
    return this.options.burst > 0;
  }

  /** Seconds until `address` may fail again; 0 while it has failures left. */
  retryAfter(address: string): number {
    if (!this.enabled) return 0;
    const b = this.refill(addressKey(address));
    if (!b || b.tokens >= 1) return 0;
    return Math.max(1, Math.ceil((1 - b.tokens) / Math.max(this.options.ratePerSecond, 0.001)));
  }

  /** The 429 for an address that must wait `waitS` seconds. */
  refusal(waitS: number): TooManyRequestsError {
    return new TooManyRequestsError(
      `Too many requests from this address failed authentication (${this.options.burst} at most, ${this.options.ratePerSecond} more per second). Check the credentials, then retry after the Retry-After interval.`,
      waitS,
    );
  }

  /**
   * Waits `delayMs` before a refusal on `socket` is sent. A second refusal held on the same connection
   * at once can only be a pipelined request behind the first: the connection is closed instead.
   */
  async hold(socket: Socket | undefined): Promise<void> {
    if (this.delayMs <= 0) return;
    const s = socket as (Socket & { [HELD]?: boolean }) | undefined;
    if (s?.[HELD]) {
      s.destroy();
      return;
    }
    if (s) s[HELD] = true;
    try {
      await sleep(this.delayMs);
    } finally {
      if (s) s[HELD] = false;
    }
  }

  /** Spends one failure of `address`. */
  failed(address: string): void {
    if (!this.enabled) return;
    const key = addressKey(address);
    const b = this.refill(key) ?? { tokens: this.options.burst, at: this.now() };
    b.tokens -= 1;
    this.buckets.delete(key); // re-inserted last: the Map's order is least recently failed first
    this.buckets.set(key, b);
    if (this.buckets.size > this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
  }

  private refill(key: string): Bucket | undefined {
    const b = this.buckets.get(key);
    if (!b) return undefined;
    const now = this.now();
    b.tokens = Math.min(this.options.burst, b.tokens + ((now - b.at) / 1000) * this.options.ratePerSecond);
    b.at = now;
    if (b.tokens >= this.options.burst) {
      this.buckets.delete(key);
      return undefined;
    }
    return b;
  }
}

/** The budget's key for an address: IPv4 as is, IPv6 by its /64 (IPv4-mapped IPv6 as IPv4). */
export function addressKey(address: string): string {
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!address.includes(':')) return address;
  const [head = '', tail = ''] = address.split('::');
  const groups = head ? head.split(':') : [];
  if (groups.length < 4) {
    const tailGroups = tail ? tail.split(':') : [];
    const zeros = 8 - groups.length - tailGroups.length;
    groups.push(...Array<string>(Math.max(0, zeros)).fill('0'), ...tailGroups);
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

const socketOf = (c: Context<AppEnv>): Socket | undefined =>
  (c.env as HttpBindings | undefined)?.incoming?.socket;

/**
 * A request refused before authentication (`err`: a bound or SigV4's 403): marks its connection as
 * failing and spends one failure of its address. An address that had no failures left gets, instead of
 * `err`, a 429 with `Retry-After`, held {@link AuthFailureBudget.delayMs} (the tarpit).
 * @returns the error to answer with.
 */
export async function failedBeforeAuthentication(
  c: Context<AppEnv>,
  budget: AuthFailureBudget | undefined,
  err: unknown,
): Promise<unknown> {
  if (!budget?.enabled) return err;
  const socket = socketOf(c);
  const address = socket?.remoteAddress ?? 'unknown';
  markFailed(socket);
  const waitS = budget.retryAfter(address);
  if (waitS === 0) {
    budget.failed(address);
    return err;
  }
  await budget.hold(socket);
  return budget.refusal(waitS);
}

/**
 * The first check of every request, in time linear in its request target: a connection whose last
 * request failed authentication, from an address over its budget, gets a held 429 without anything of
 * its request read; then the request target's bounds, whose refusals count as failed authentications.
 */
export function guardPreAuth(budget: AuthFailureBudget | undefined): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (budget?.enabled) {
      const socket = socketOf(c);
      if (lastFailed(socket)) {
        const waitS = budget.retryAfter(socket?.remoteAddress ?? 'unknown');
        if (waitS > 0) {
          await budget.hold(socket);
          throw budget.refusal(waitS);
        }
      }
    }
    try {
      checkRequestTarget(c.req.url);
    } catch (err) {
      throw await failedBeforeAuthentication(c, budget, err);
    }
    return next();
  };
}
