// gateway/: `npm run gateway`, an HTTP reverse proxy presenting one client certificate to an mTLS backend.
/**
 * `npm run gateway -- --client-certificate-id ID --target https://HOST:PORT [--listen 127.0.0.1:8081]
 * [--target-ca FILE] [--account ACCOUNT] [--region REGION]`: an HTTP reverse proxy that presents a
 * client certificate to an mTLS backend, as API Gateway does (docs/mtls-gateway.md). It reads the
 * record and its sealed key from the service's Redis (REDIS_URL or REDIS_CLUSTER_NODES, REDIS_PREFIX)
 * and opens the key with the workers' master key (MASTER_KEY, else MASTER_KEY_FILE in development).
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { loadConfig } from '../shared/config.js';
import { loadKeyVault } from '../shared/crypto/master-key.js';
import { Keys } from '../shared/keys.js';
import { createServiceLogger } from '../shared/logger.js';
import { TIMED_OUT, withTimeout } from '../shared/timeout.js';
import { createRedis, failFastOptions } from '../shared/redis.js';
import { installShutdown } from '../shared/shutdown.js';
import { loadGatewayConfig } from './config.js';
import { createGateway } from './gateway.js';

function exit(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

let config;
let gw;
try {
  config = loadConfig();
  gw = loadGatewayConfig(process.argv.slice(2), config);
} catch (err) {
  exit((err as Error).message);
}
const log = createServiceLogger(config, 'gateway');
let targetCa: string | undefined;
if (gw.targetCaFile !== undefined) {
  try {
    targetCa = readFileSync(gw.targetCaFile, 'utf8');
  } catch (err) {
    exit(`--target-ca (GATEWAY_TARGET_CA): cannot read ${gw.targetCaFile}: ${(err as Error).message}`);
  }
}
let vault;
try {
  vault = loadKeyVault(config, log, { createDevKey: false });
} catch (err) {
  exit(`gateway not started: ${(err as Error).message}`);
}
// Fail fast: a refresh while Redis is down must not hang; the gateway keeps presenting the certificate.
const redis = createRedis(config, failFastOptions(), 'cc-gateway');
redis.on('error', (err) => log.debug({ err }, 'redis connection error'));
let gateway;
try {
  // The fail-fast connection refuses commands until it is connected: wait for it, but not forever.
  if ((await withTimeout(once(redis, 'ready'), 10_000)) === TIMED_OUT) {
    throw new Error('Redis did not answer within 10 s');
  }
  gateway = await createGateway({
    store: new ClientCertificateStore(redis, new Keys(config.redisPrefix)),
    vault,
    accountId: gw.accountId,
    region: gw.region,
    clientCertificateId: gw.clientCertificateId,
    target: gw.target,
    targetCa,
    log,
    refreshIntervalMs: gw.refreshIntervalMs,
    allowedHosts: gw.allowedHosts,
  });
} catch (err) {
  redis.disconnect();
  exit(`gateway not started: ${(err as Error).message}`);
}
const url = await gateway.listen(gw.listenPort, gw.listenHost);
// Rotation: SIGHUP presents the certificate whose id GATEWAY_SWITCH_FILE holds (docs/mtls-gateway.md).
process.on('SIGHUP', () => {
  const file = config.gatewaySwitchFile;
  if (!file) {
    log.warn('SIGHUP ignored: GATEWAY_SWITCH_FILE is not set, so there is no certificate to switch to');
    return;
  }
  let next: string;
  try {
    next = readFileSync(file, 'utf8').trim();
  } catch (err) {
    log.error({ file, err: (err as Error).message }, 'not switched: GATEWAY_SWITCH_FILE cannot be read');
    return;
  }
  if (next === gateway.clientCertificateId) {
    log.info({ clientCertificateId: next }, 'SIGHUP: already presenting this certificate');
    return;
  }
  gateway
    .use(next)
    .catch((err: unknown) =>
      log.error(
        { err: (err as Error).message, requested: next, presenting: gateway.clientCertificateId },
        'not switched: still presenting the previous certificate',
      ),
    );
});
installShutdown(log, config.shutdownTimeoutMs || 10_000, async () => {
  await gateway.close();
  redis.disconnect();
});
log.info(
  {
    url,
    target: gw.target.href,
    clientCertificateId: gw.clientCertificateId,
    accountId: gw.accountId,
    region: gw.region,
  },
  'gateway listening',
);
