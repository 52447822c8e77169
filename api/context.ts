import type { Context } from 'hono';
import type { Logger } from '../shared/logger.js';
import type { Tenant } from '../shared/keys.js';

/** Per-request values the middleware sets and the routes read. */
export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    tenant: Tenant;
    /** The authenticated credential (never its secret). */
    caller: { accessKeyId: string; accountId: string };
  };
}

export type AppContext = Context<AppEnv>;

/** Methods whose body is never read: not limited, and signed only as empty. */
export const METHODS_WITHOUT_BODY: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);
