import type { Context } from 'hono';
import type { Logger } from '../shared/logger.js';
import type { Tenant } from '../shared/keys.js';
import type { VerifiedCaller } from './auth/sigv4.js';

/** Per-request values the middleware sets and the routes read. */
export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    tenant: Tenant;
    /** The authenticated credential (never its secret). */
    caller: { accessKeyId: string; accountId: string };
    /** The verified signature: credential, account, region and IAM action (set by `authenticate`). */
    verified: VerifiedCaller;
  };
}

export type AppContext = Context<AppEnv>;

/** Methods whose body is never read: not limited, and signed only as empty. */
export const METHODS_WITHOUT_BODY: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);
