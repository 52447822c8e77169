import type { RedisClient } from '../shared/redis.js';
import type { Keys, Tenant } from '../shared/keys.js';
import { withScripts, type Scripted } from '../shared/lua/index.js';

export interface ThrottleOptions {
  /** Sustained requests per second; 0 turns throttling off. */
  rps: number;
  /** Requests an idle account may make at once. */
  burst: number;
}

/**
 * Per account and region request-rate limit shared by all API replicas: GCRA in Redis, with Redis's
 * clock (shared/lua/gcra.lua).
 */
export class Throttle {
  private readonly redis: Scripted;

  constructor(
    redis: RedisClient,
    private readonly keys: Keys,
    readonly options: ThrottleOptions,
  ) {
    this.redis = withScripts(redis);
  }

  /** @returns 0 when the request may proceed, else the milliseconds until one more would be allowed. */
  async take(t: Tenant): Promise<number> {
    if (this.options.rps <= 0) return 0;
    return Number(
      await this.redis.ccGcra(this.keys.throttle(t), 1000 / this.options.rps, this.options.burst),
    );
  }
}
