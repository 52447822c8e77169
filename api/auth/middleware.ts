// api/auth/: SigV4 verification, the credentials file, and the authenticate / authorise / throttle middlewares.
import type { Socket } from 'node:net';
import type { MiddlewareHandler } from 'hono';
import { ApiError, TooManyRequestsError, UnauthorizedError } from '../../shared/errors.js';
import { clientCertificateArn } from '../../shared/client-certificate.js';
import { partitionOf } from '../../shared/regions.js';
import { METHODS_WITHOUT_BODY, type AppEnv } from '../context.js';
import { markAuthenticated } from '../connection-guard.js';
import { failedBeforeAuthentication, type AuthFailureBudget } from '../pre-auth.js';
import type { Throttle } from '../throttle.js';
import { isAllowed } from './credentials.js';
import type { SigV4Verifier } from './sigv4.js';

/**
 * Verifies the request's SigV4 signature and sets the caller's tenant (account from the credential,
 * region from the signature's scope). The body is read here once; Hono caches it, so the routes read
 * it again with `c.req.text()` for free.
 */
export function authenticate(verifier: SigV4Verifier, budget?: AuthFailureBudget): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    // A connection that failed before, from an address over its budget, was refused before this
    // (guardPreAuth); a new or authenticated one is verified even then.
    const caller = await verifier
      .verify({
        method: c.req.method,
        url: new URL(c.req.url),
        headers: c.req.raw.headers,
        // A body-less method's body is neither limited nor read (reading it would also make node-server build
        // a full Request): it counts as empty, so a GET that signed a body fails verification.
        body: async () =>
          METHODS_WITHOUT_BODY.has(c.req.method)
            ? new Uint8Array(0)
            : new Uint8Array(await c.req.arrayBuffer()),
      })
      .catch(async (err: unknown) => {
        // SigV4's refusals are 403s; a 413 or an aborted body is not a failed authentication.
        if (err instanceof ApiError && err.status === 403)
          throw await failedBeforeAuthentication(c, budget, err);
        throw err;
      });
    // The connection has carried a valid signature: it keeps the long keep-alive (connection-guard.ts).
    markAuthenticated((c.env as { incoming?: { socket?: Socket } } | undefined)?.incoming?.socket);
    const tenant = { accountId: caller.accountId, region: caller.region };
    c.set('tenant', tenant);
    c.set('verified', caller);
    c.set('caller', { accessKeyId: caller.credential.accessKeyId, accountId: caller.accountId });
    c.get('log').debug({ accessKeyId: caller.credential.accessKeyId, ...tenant }, 'authenticated');
    return next();
  };
}

/** Spends one request of the caller's account and region budget; 429 with Retry-After when it is empty. */
export function throttlePerAccount(throttle: Throttle): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const tenant = c.get('tenant');
    const waitMs = await throttle.take(tenant);
    if (waitMs > 0) {
      throw new TooManyRequestsError(
        `Too Many Requests: account ${tenant.accountId} exceeded ${throttle.options.rps} requests per second (burst ${throttle.options.burst}) in ${tenant.region}. Retry after the Retry-After interval.`,
        Math.max(1, Math.ceil(waitMs / 1000)),
      );
    }
    return next();
  };
}

/** Checks the authenticated credential's `allow` list against the request's IAM action. */
export function authorise(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const caller = c.get('verified');
    if (!isAllowed(caller.credential, caller.action)) {
      throw new UnauthorizedError(
        `User: ${caller.credential.accessKeyId} (account ${caller.accountId}) is not authorized to perform: ${caller.action} on resource: ${resourceArn(caller.region, c.req.path)}`,
      );
    }
    return next();
  };
}

/** The ARN IAM would name for a request path (API Gateway's resource ARNs carry the path). */
function resourceArn(region: string, path: string): string {
  const m = /^\/clientcertificates\/([^/]+)/.exec(path);
  if (m) return clientCertificateArn(region, m[1]!);
  return `arn:${partitionOf(region)}:apigateway:${region}::${path.slice(0, 200)}`;
}
