import type { RedisClient } from '../shared/redis.js';
import type { Keys, Tenant } from '../shared/keys.js';

/**
 * GCRA (a token bucket without a refill timer): one key per account and region holding the
 * "theoretical arrival time" of the next request. Runs in Redis with Redis's clock, so every API
 * replica shares one budget and replica clocks do not matter.
 * KEYS: state. ARGV: emission interval ms (1000 / rps), burst.
 * Returns 0 when allowed, else the ms to wait before the next request would be.
 */
const GCRA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local newTat = tat + interval
local allowAt = newTat - burst * interval
if now < allowAt then return math.ceil(allowAt - now) end
redis.call('SET', KEYS[1], tostring(newTat), 'PX', math.ceil(newTat - now) + 1000)
return 0`;

type WithGcra = RedisClient & { ccGcra(key: string, intervalMs: number, burst: number): Promise<number> };

export interface ThrottleOptions {
  /** Sustained requests per second; 0 turns throttling off. */
  rps: number;
  /** Requests an idle account may make at once. */
  burst: number;
}

/** Per account and region request-rate limit shared by all API replicas. */
export class Throttle {
  private readonly redis: WithGcra;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    readonly options: ThrottleOptions,
  ) {
    if (!('ccGcra' in redis)) redis.defineCommand('ccGcra', { numberOfKeys: 1, lua: GCRA });
    this.redis = redis as WithGcra;
  }

  /** @returns 0 when the request may proceed, else the milliseconds until one more would be allowed. */
  async take(t: Tenant): Promise<number> {
    if (this.options.rps <= 0) return 0;
    return Number(
      await this.redis.ccGcra(this.keys.throttle(t), 1000 / this.options.rps, this.options.burst),
    );
  }
}
