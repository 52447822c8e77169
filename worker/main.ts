import { loadConfig } from '../shared/config.js';
import { loadKeyVault } from '../shared/crypto/master-key.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { installShutdown } from '../shared/shutdown.js';
import { directKeySource } from './key-source.js';
import { startWorker } from './worker.js';

const config = loadConfigOrExit();
const log = createLogger(config.logLevel, 'worker');
const threadpool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
if (config.workerConcurrency > threadpool) {
  log.warn(
    { workerConcurrency: config.workerConcurrency, UV_THREADPOOL_SIZE: threadpool },
    'WORKER_CONCURRENCY exceeds the libuv thread pool: key generation will queue; start with UV_THREADPOOL_SIZE set higher',
  );
}
const redis = createRedis(config.redisUrl, patientOptions(), 'cc-worker');
redis.on('error', (err) => log.debug({ err }, 'redis connection error'));
const vault = loadKeyVault(config, log);
const running = startWorker({
  redis,
  keys: new Keys(config.redisPrefix),
  vault,
  keySource: directKeySource,
  log,
  concurrency: config.workerConcurrency,
  certProfile: config.certProfile,
});
log.info(
  {
    workerId: running.id,
    concurrency: config.workerConcurrency,
    threadpool,
    certProfile: config.certProfile,
  },
  'worker started',
);

installShutdown(log, 25_000, async () => {
  await running.close(20_000);
  await directKeySource.close();
  redis.disconnect();
});

function loadConfigOrExit() {
  try {
    return loadConfig();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
