/**
 * What the API bounds before it knows who is asking: the request target (length, query parameters),
 * and a per-address budget of requests that fail authentication. Every check here is linear in the
 * request's size and asks Redis nothing, so an unauthenticated flood costs little and cannot slow
 * down signed callers (docs/security.md, "Limits").
 */
import { ApiError, TooManyRequestsError } from '../shared/errors.js';

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
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per client address that only failed authentications spend. Once an address has
 * spent it, its requests are refused with 429 and `Retry-After` before anything is parsed, until
 * the bucket refills. Per process and in memory, like the dashboard's login backoff. IPv6 addresses
 * count per /64, what one host is usually given.
 */
export class AuthFailureBudget {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxAddresses: number;
  private readonly now: () => number;

  constructor(readonly options: AuthFailureBudgetOptions) {
    this.maxAddresses = options.maxAddresses ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.options.burst > 0;
  }

  /** @throws TooManyRequestsError when `address` has no failures left. */
  check(address: string): void {
    if (!this.enabled) return;
    const b = this.refill(addressKey(address));
    if (!b || b.tokens >= 1) return;
    const waitS = Math.max(1, Math.ceil((1 - b.tokens) / Math.max(this.options.ratePerSecond, 0.001)));
    throw new TooManyRequestsError(
      `Too many requests from this address failed authentication (${this.options.burst} at most, ${this.options.ratePerSecond} more per second). Check the credentials, then retry after the Retry-After interval.`,
      waitS,
    );
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
