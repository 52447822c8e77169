// worker/: the worker process: takes generate jobs from the queue, makes the key and certificate, stores the record.
import { Cleanup } from '../shared/cleanup.js';
import { loadConfigOrExit } from '../shared/config.js';
import { loadKeyVault } from '../shared/crypto/master-key.js';
import { Keys } from '../shared/keys.js';
import { createServiceLogger } from '../shared/logger.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { startRuntimeStats } from '../shared/runtime-stats.js';
import { installShutdown } from '../shared/shutdown.js';
import { EXIT_CONFIG } from '../shared/startup-errors.js';
import { outlivesCa, readCertificateAuthority } from '../shared/certificate-authority.js';
import { KeyPool } from './key-pool.js';
import { startWorkerHealthServer, type WorkerHealthServer } from './health-server.js';
import { directKeySource, type KeySource } from './key-source.js';
import { currentThreadpoolSize, relaunchWithThreadpool, requiredThreadpoolSize } from './threadpool.js';
import { startWorker } from './worker.js';

/** Refill generations per process: one core's worth, so refilling never crowds out waiting jobs. */
const REFILL_PARALLELISM = 1;

const config = loadConfigOrExit();
const log = createServiceLogger(config, 'worker');
const needed = requiredThreadpoolSize(
  config.workerConcurrency,
  config.keyPoolSize > 0 ? REFILL_PARALLELISM : 0,
);
if (!relaunchWithThreadpool(needed, log)) run();

function run() {
  const threadpool = currentThreadpoolSize();
  const redis = createRedis(config, patientOptions(), 'cc-worker');
  redis.on('error', (err) => log.debug({ err }, 'redis connection error'));
  const vault = loadKeyVault(config, log);
  const loaded = loadCaOrExit();
  const ca = loaded && config.caPublicUrl ? { ...loaded, publicUrl: config.caPublicUrl } : loaded;
  const pool =
    config.keyPoolSize > 0
      ? new KeyPool({
          size: config.keyPoolSize,
          refillParallelism: REFILL_PARALLELISM,
          onError: (err) => log.error({ err }, 'key generation failed'),
        })
      : undefined;
  const keySource: KeySource = pool ?? directKeySource;
  const running = startWorker({
    redis,
    keys: new Keys(config.redisPrefix),
    vault,
    keySource,
    log,
    concurrency: config.workerConcurrency,
    certProfile: config.certProfile,
    ca,
    keyPoolLevel: pool ? () => pool.stats().ready : undefined,
    lockDurationMs: config.workerLockDurationMs,
    stalledIntervalMs: config.workerStalledIntervalMs,
    watchdogIntervalMs: config.workerWatchdogIntervalMs,
  });
  let health: WorkerHealthServer | undefined;
  if (config.workerHealthPort > 0) {
    startWorkerHealthServer({
      host: config.host,
      port: config.workerHealthPort,
      redis,
      running: () => running.worker.isRunning(),
    }).then(
      (h) => (health = h),
      (err: unknown) => {
        log.fatal({ err, port: config.workerHealthPort }, 'cannot listen for health probes');
        process.exit(1);
      },
    );
  }
  const stopStats =
    config.runtimeStatsIntervalMs > 0
      ? startRuntimeStats(
          log.child({ component: 'worker', workerId: running.id }),
          () => (pool ? { keyPool: pool.stats() } : {}),
          config.runtimeStatsIntervalMs,
        )
      : () => undefined;
  log.info(
    {
      workerId: running.id,
      concurrency: config.workerConcurrency,
      keyPoolSize: config.keyPoolSize,
      threadpool,
      certProfile: config.certProfile,
      certIssuer: config.certIssuer,
      lockDurationMs: config.workerLockDurationMs,
      stalledIntervalMs: config.workerStalledIntervalMs,
      watchdogIntervalMs: config.workerWatchdogIntervalMs,
    },
    'worker started',
  );

  // Jobs take well under a second, so a worker drains quickly; jobs it cannot finish in time are
  // re-run elsewhere once their locks expire.
  const hardTimeoutMs = config.shutdownTimeoutMs || 25_000;
  const cleanup = new Cleanup()
    .add('runtime stats', () => stopStats())
    // The probes stay up while jobs drain: live says 200, ready 503 (the worker no longer runs).
    .add('worker: drain its jobs', () => running.close(Math.max(500, hardTimeoutMs - 3000)))
    .add('health probes', () => health?.close())
    .add('key source', () => keySource.close())
    .add('redis connection', () => redis.disconnect());
  installShutdown(log, hardTimeoutMs, () => cleanup.run());
}

/**
 * CERT_ISSUER=ca: the CA from CA_CERT_FILE and CA_KEY_FILE, checked. A CA that cannot sign stops the
 * worker with exit code {@link EXIT_CONFIG}, which the launcher takes as final rather than restarting.
 */
function loadCaOrExit() {
  if (config.certIssuer !== 'ca') return undefined;
  try {
    const ca = readCertificateAuthority(config.caCertFile!, config.caKeyFile!);
    if (outlivesCa(ca)) {
      log.warn(
        { caCertFile: config.caCertFile, caNotAfter: new Date(ca.notAfter).toISOString() },
        'the CA expires within 365 days: certificates issued now outlive it and stop verifying when it expires',
      );
    }
    return ca;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(EXIT_CONFIG);
  }
}
