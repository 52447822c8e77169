// api/: the HTTP front (Hono), speaking API Gateway's ClientCertificate API; it enqueues, the workers generate.
import { loadConfigOrExit } from '../shared/config.js';
import { createServiceLogger } from '../shared/logger.js';
import { installShutdown } from '../shared/shutdown.js';
import { StartupError } from '../shared/startup-errors.js';
import { startApi } from './server.js';

const config = loadConfigOrExit();
const log = createServiceLogger(config, 'api');
let api;
try {
  api = await startApi(config, log);
} catch (err) {
  // CredentialsError, or ConfigError for a CA (CERT_ISSUER=ca) the API cannot sign CRLs with.
  if (!(err instanceof StartupError)) throw err;
  log.fatal({ err: err.message }, 'cannot start');
  process.stderr.write(`${err.message}\n`);
  process.exit(err.exitCode);
}
// An in-flight Generate may wait GENERATE_TIMEOUT_MS for its job: drain for that long, then give up.
const hardTimeoutMs = config.shutdownTimeoutMs || config.generateTimeoutMs + 10_000;
installShutdown(log, hardTimeoutMs, () => api.close(Math.max(500, hardTimeoutMs - 3000)));
// SIGHUP: re-read CREDENTIALS_FILE without a restart; a bad file is logged and changes nothing.
process.on('SIGHUP', () => api.reloadCredentials());
// Announced only once the signal handlers are in place: a SIGHUP sent on this line must not kill the process.
log.info({ url: api.url }, 'API listening');
