import type { Context } from 'hono';
import type { Logger } from '../shared/logger.js';
import type { Tenant } from '../shared/keys.js';

/** Per-request values the middleware sets and the routes read. */
export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    tenant: Tenant;
  };
}

export type AppContext = Context<AppEnv>;

const SCOPE = /Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request/;

/** The region of a SigV4 credential scope (`Authorization` header or presigned `X-Amz-Credential`). */
export function regionFromRequest(authorization: string | undefined, url: URL): string | undefined {
  const m = authorization?.match(SCOPE);
  if (m) return m[3];
  const cred = url.searchParams.get('X-Amz-Credential');
  return cred?.split('/')[2];
}
