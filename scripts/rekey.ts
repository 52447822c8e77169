/**
 * `npm run rekey [-- --dry-run]`
 *
 * Re-seals every certificate's private key, of every account and region, under the current MASTER_KEY,
 * opening each with MASTER_KEY or a key in MASTER_KEYS_PREVIOUS. Talks to Redis directly (REDIS_URL or
 * REDIS_CLUSTER_NODES, REDIS_PREFIX). Progress on stderr, the summary on stdout; never a private key.
 * Exit codes: 0 every record is (or, dry run, could be) under the current key; 1 some record could not
 * be opened or re-sealed, or the run was interrupted or lost Redis (re-run to finish); 2 bad arguments
 * or configuration (nothing read).
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { loadConfig, type Config } from '../shared/config.js';
import type { KeyVault } from '../shared/crypto/key-vault.js';
import { loadKeyVault } from '../shared/crypto/master-key.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { createRedis, patientOptions } from '../shared/redis.js';
import { runRekey, type RekeyCounts, type RekeyResult } from './rekey/reseal.js';
import { abortOnInterrupt } from './interrupt.js';

const USAGE = `usage: npm run rekey [-- --dry-run]

Re-seals the private key of every client certificate of every account and region under the current
MASTER_KEY. Records are opened with MASTER_KEY or any key in MASTER_KEYS_PREVIOUS; a record already
under MASTER_KEY is only checked. Safe to run while the service runs, and to re-run.
  --dry-run   open every record and report what would be re-sealed; write nothing
Environment: MASTER_KEY, MASTER_KEYS_PREVIOUS, REDIS_URL or REDIS_CLUSTER_NODES, REDIS_PREFIX (see docs/configuration.md).`;

/** Failures listed one by one; beyond this, only the counts per reason. */
const MAX_LISTED = 50;

const say = (s: string) => process.stderr.write(s + '\n');
const out = (s: string) => process.stdout.write(s + '\n');

let dryRun: boolean;
let config: Config;
let vault: KeyVault;
try {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: true,
    options: { 'dry-run': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    out(USAGE);
    process.exit(0);
  }
  if (positionals.length > 0) throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
  dryRun = values['dry-run'] ?? false;
  config = loadConfig();
  // Warnings (a development key file in use) go to stderr; never create a key here.
  vault = loadKeyVault(config, createLogger('warn', 'rekey', pino.destination(2)), { createDevKey: false });
} catch (err) {
  say(`rekey: ${(err as Error).message}`);
  say(USAGE);
  process.exit(2);
}

// Patient, but not forever: a CLI should say so when Redis is not there rather than hang.
const redis = createRedis(
  config,
  {
    ...patientOptions(),
    retryStrategy: (times: number) => (times > 10 ? null : Math.min(200 * times, 2000)),
  },
  'cc-rekey',
);
let redisError: Error | undefined;
redis.on('error', (err: Error) => (redisError = err));
const store = new ClientCertificateStore(redis, new Keys(config.redisPrefix));

const interrupted = abortOnInterrupt(
  'rekey: interrupted; finishing the records in hand. Re-run to complete.',
);

const line = (c: RekeyCounts) =>
  `${c.scanned} scanned, ${c.resealed} ${dryRun ? 'to re-seal' : 're-sealed'}, ${c.current} already current, ` +
  `${c.vanished} deleted meanwhile, ${c.failed} failed`;
say(
  `rekey: ${dryRun ? 'dry run: ' : ''}sealing under master key ${vault.currentKeyId}; opening with ${vault.keyIds.join(', ')}`,
);
let latest: RekeyCounts | undefined;
let shown: RekeyCounts | undefined;
const ticker = setInterval(() => {
  if (latest && latest !== shown) say(`rekey: ${line((shown = latest))}`);
}, 1000);

let code = 0;
try {
  const result = await runRekey({
    store,
    vault,
    dryRun,
    signal: interrupted,
    progress: (c) => (latest = c),
  });
  clearInterval(ticker);
  summary(result);
  if (result.failed > 0 || result.interrupted) code = 1;
} catch (err) {
  clearInterval(ticker);
  const e = redisError ?? (err as Error);
  say(`rekey: failed: ${e.message}. Records done so far stay done; re-run to finish.`);
  code = 1;
} finally {
  redis.disconnect();
}
process.exit(code);

function summary(r: RekeyResult): void {
  out(`rekey: ${r.interrupted ? 'interrupted' : 'done'}${dryRun ? ' (dry run: nothing written)' : ''}`);
  out(`  records scanned       ${r.scanned}`);
  out(`  ${dryRun ? 'would re-seal      ' : 're-sealed          '}   ${r.resealed}`);
  out(`  already current       ${r.current}`);
  out(`  deleted meanwhile     ${r.vanished}`);
  out(`  failed / unreadable   ${r.failed}`);
  const under = Object.entries(r.sealedUnder)
    .map(([k, n]) => `${k}${k === vault.currentKeyId ? ' (current)' : ''}: ${n}`)
    .join(', ');
  if (under) out(`  sealed under, before  ${under}`);
  if (r.failures.length > 0) {
    const byReason = new Map<string, number>();
    for (const f of r.failures) byReason.set(f.reason, (byReason.get(f.reason) ?? 0) + 1);
    out('  failures by reason:');
    for (const [reason, n] of byReason) out(`    ${n} × ${reason}`);
    out('  failed records (account/region/id: reason):');
    for (const f of r.failures.slice(0, MAX_LISTED)) {
      out(`    ${f.accountId}/${f.region}/${f.clientCertificateId}: ${f.reason}`);
    }
    if (r.failures.length > MAX_LISTED) out(`    ... and ${r.failures.length - MAX_LISTED} more`);
  }
  if (r.interrupted) {
    out('rekey: re-run to finish; records already re-sealed are skipped.');
  } else if (r.failed > 0) {
    out(
      'rekey: some records could not be opened or re-sealed (reasons above): keep every key in MASTER_KEYS_PREVIOUS; ' +
        'configure the missing key (or delete those certificates) and re-run.',
    );
  } else if (dryRun) {
    out('rekey: every record opens; run without --dry-run to re-seal.');
  } else {
    out(
      `rekey: every record is sealed under master key ${vault.currentKeyId}. Once every API and worker process runs ` +
        'with this MASTER_KEY, the keys in MASTER_KEYS_PREVIOUS are no longer needed: remove them and restart.',
    );
  }
}
