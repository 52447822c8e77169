import type { Queue } from 'bullmq';
import type { ClientCertificateStore } from '../shared/client-certificate-store.js';
import type { Logger } from '../shared/logger.js';
import type { ApiMetrics } from '../shared/metrics.js';
import type { SigV4Verifier } from './auth/sigv4.js';
import type { CaResponder } from './ca-responder.js';
import type { Issuer } from './issuer.js';
import type { AuthFailureBudget } from './pre-auth.js';
import type { AdminOptions } from './routes/admin.js';
import type { HealthCheck } from './routes/health.js';
import type { Throttle } from './throttle.js';

/** Everything the HTTP API touches, passed to `createApp` (api/app.ts) and on to the routes. */
export interface AppDeps {
  issuer: Issuer;
  store: ClientCertificateStore;
  log: Logger;
  health: HealthCheck;
  /** SigV4 verification against the credentials file. */
  verifier: SigV4Verifier;
  /** How long a request body may take to arrive, ms (REQUEST_BODY_TIMEOUT_MS); default 10 s. */
  bodyTimeoutMs?: number;
  /** Per client address budget of failed authentications (AUTH_FAILURE_BURST); absent = none. */
  authFailures?: AuthFailureBudget;
  /** Per account and region request-rate limit; absent = none. */
  throttle?: Throttle;
  /** Prometheus metrics: counts every request and serves /metrics. Absent: no /metrics. */
  metrics?: ApiMetrics;
  /** Bearer token /metrics requires (METRICS_TOKEN); absent: /metrics is open. */
  metricsToken?: string;
  /** CERT_ISSUER=ca: the CRL and OCSP responder, and deletes that revoke. Absent: self-signed mode. */
  ca?: CaResponder;
  /** The queue dashboard at /admin/queues; absent (no ADMIN_PASSWORD): that path is a 404. */
  admin?: { queue: Queue; password: string } & AdminOptions;
}
