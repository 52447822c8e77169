/**
 * `npm run bulk -- --count N [--description TEXT] [--tag k=v ...] [--account ID] [--region R] --out FILE.ndjson`
 *
 * Talks to Redis directly (REDIS_URL, REDIS_PREFIX): reserves ids against the account's quota, enqueues
 * generation jobs with the API's job contract (so the running workers issue them), waits for them and
 * writes one public record per line. Exit codes: 0 done, 1 failed or interrupted (re-run to complete),
 * 2 bad arguments or configuration (nothing issued), 3 over the quota (nothing issued).
 */
import { loadCredentials } from '../api/auth/credentials.js';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { loadConfig, ConfigError, type Config } from '../shared/config.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { interactiveJobsServed } from '../shared/metrics.js';
import { createQueue, createQueueEvents } from '../shared/queue.js';
import { Scheduler } from '../shared/scheduler.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { TIMED_OUT, withTimeout } from '../shared/timeout.js';
import { USAGE, UsageError, parseBulkArgs } from './bulk/args.js';
import { OutputError, QuotaError, runBulk } from './bulk/batch.js';
import { Progress } from './bulk/progress.js';
import { abortOnInterrupt } from './interrupt.js';

const say = (s: string) => process.stderr.write(s + '\n');
/** host:port of the Redis URL, without the password it may carry. */
const redisHost = (url: string | undefined) => {
  const u = new URL(url ?? 'redis://127.0.0.1:6379');
  return `${u.hostname}:${u.port || 6379}`;
};

let config: Config;
let args: ReturnType<typeof parseBulkArgs>;
try {
  config = loadConfig();
  args = parseBulkArgs(process.argv.slice(2), {
    accountId: config.defaultAccountId,
    region: config.defaultRegion,
  });
} catch (err) {
  if (err instanceof UsageError || err instanceof ConfigError) {
    say(`bulk: ${err.message}`);
    if (err instanceof UsageError) say(USAGE);
    process.exit(2);
  }
  throw err;
}
if (args === 'help') {
  process.stdout.write(USAGE + '\n');
  process.exit(0);
}

// The same quota as the API: the account's own limit from CREDENTIALS_FILE, else CLIENT_CERTIFICATE_LIMIT (0 = none).
let limit: number;
try {
  const accountLimit = config.credentialsFile
    ? loadCredentials(
        { credentialsFile: config.credentialsFile, nodeEnv: config.nodeEnv },
        createLogger('silent', 'bulk'),
      ).limitFor(args.accountId)
    : undefined;
  limit = accountLimit ?? config.clientCertificateLimit;
} catch (err) {
  say(`bulk: ${(err as Error).message}`);
  process.exit(2);
}
const keys = new Keys(config.redisPrefix);
// Patient, but not forever: a CLI should say so when Redis is not there rather than hang.
const redisOptions = {
  ...patientOptions(),
  retryStrategy: (times: number) => (times > 20 ? null : Math.min(200 * times, 1000)),
};
const redis = createRedis(config, redisOptions, 'cc-bulk');
const eventsRedis = createRedis(config, redisOptions, 'cc-bulk-events');
let redisError: Error | undefined;
redis.on('error', (err: Error) => (redisError = err));
eventsRedis.on('error', (err: Error) => (redisError = err));

const queue = createQueue(redis, keys);
const queueEvents = createQueueEvents(eventsRedis, keys);

const interrupted = abortOnInterrupt(
  'bulk: interrupted; queued jobs keep running. Re-run the same command to complete the batch.',
);

const progress = new Progress(process.stderr);
// The batch yields to interactive work (shared/scheduler.ts): say so while it does.
const scheduler = new Scheduler(redis, keys);
let served: number | undefined;
const yielding = setInterval(() => {
  void (async () => {
    const [b, s] = await Promise.all([scheduler.backlog(), interactiveJobsServed(redis, keys)]);
    const recent = served === undefined ? 0 : s - served;
    served = s;
    progress.setNote(
      b.interactive > 0 || recent > 0
        ? `yielding to interactive work: ${recent} Generate(s) served in the last second, ${b.interactive} waiting`
        : undefined,
    );
  })().catch(() => undefined);
}, 1000);
yielding.unref();
let code = 0;
try {
  if ((await withTimeout(queueEvents.waitUntilReady(), 15_000)) === TIMED_OUT) {
    throw redisError ?? new Error('timed out');
  }
  const result = await runBulk(args, {
    redis,
    keys,
    store: new ClientCertificateStore(redis, keys),
    queue,
    queueEvents,
    limit,
    progress: (d, t) => progress.update(d, t),
    info: (m) => say(`bulk: ${m}`),
    signal: interrupted,
  });
  progress.end();
  if (result.interrupted) code = 1;
  else if (result.failed.length > 0) {
    say(
      `bulk: ${result.failed.length} certificate(s) could not be issued (${result.failed[0]!.reason}${result.failed.length > 1 ? ', ...' : ''}); ` +
        `${result.written}/${args.count} records are in ${args.out}. Re-run the same command to issue the rest.`,
    );
    code = 1;
  } else if (result.enqueued === 0 && result.pickedUp === 0 && result.alreadyWritten >= args.count) {
    say(`bulk: ${args.out} already holds ${result.alreadyWritten} records: nothing to do`);
  } else {
    say(
      `bulk: ${result.written} records in ${args.out} (${result.enqueued} issued now, ${result.pickedUp} picked up from an interrupted run)`,
    );
  }
} catch (err) {
  progress.end();
  if (err instanceof UsageError) {
    say(`bulk: ${err.message}`);
    code = 2;
  } else if (err instanceof QuotaError) {
    say(`bulk: ${err.message}`);
    code = 3;
  } else if (err instanceof OutputError) {
    say(`bulk: ${err.message}`);
    code = 1;
  } else {
    const e = redisError ?? (err as Error);
    say(`bulk: failed: ${e.message} (Redis at ${redisHost(config.redisUrl)}). Re-run to resume.`);
    code = 1;
  }
} finally {
  clearInterval(yielding);
  await queueEvents.close().catch(() => undefined);
  await queue.close().catch(() => undefined);
  redis.disconnect();
  eventsRedis.disconnect();
}
process.exit(code);
