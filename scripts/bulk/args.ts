import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiError } from '../../shared/errors.js';
import { isAwsRegion } from '../../shared/regions.js';
import { AWS_REGION, validateDescription, validateTags } from '../../shared/validation.js';

/** A bad command line: the message names the argument; the CLI exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface BulkArgs {
  count: number;
  description?: string;
  tags: Record<string, string>;
  accountId: string;
  region: string;
  /** Absolute path of the NDJSON output. */
  out: string;
}

/** Upper bound of one batch: keeps a typo such as `--count 1000000` from flooding the queue. */
export const MAX_COUNT = 100_000;

export const USAGE = `usage: npm run bulk -- --count N [--description TEXT] [--tag key=value ...]
                      [--account ID] [--region REGION] --out FILE.ndjson

Issues N client certificates through the worker queue and writes one public record per line to
FILE.ndjson. Re-run the same command after an interruption to complete the batch.
Environment: REDIS_URL, REDIS_PREFIX, DEFAULT_ACCOUNT_ID, DEFAULT_REGION (see docs/configuration.md).`;

/**
 * Parses and validates the bulk CLI's arguments with the API's own rules for description and tags.
 * @throws UsageError naming the offending argument.
 */
export function parseBulkArgs(
  argv: string[],
  defaults: { accountId: string; region: string },
): BulkArgs | 'help' {
  let values: Record<string, string | boolean | string[] | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: true,
      options: {
        count: { type: 'string' },
        description: { type: 'string' },
        tag: { type: 'string', multiple: true },
        account: { type: 'string' },
        region: { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    // parseArgs names the option already ("Unknown option '--cuont'", "Option '--count <value>' argument missing").
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  if (positionals.length > 0) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(positionals[0])}: every value needs its --option`,
    );
  }

  const countText = values.count as string | undefined;
  if (countText === undefined) throw new UsageError('--count is required: how many certificates to issue');
  if (!/^\d+$/.test(countText) || Number(countText) < 1 || Number(countText) > MAX_COUNT) {
    throw new UsageError(
      `--count must be a whole number from 1 to ${MAX_COUNT}, got ${JSON.stringify(countText)}`,
    );
  }

  const outText = values.out as string | undefined;
  if (outText === undefined || outText === '') {
    throw new UsageError('--out is required: the NDJSON file that receives one record per certificate');
  }
  const out = resolve(outText);
  if (!existsSync(dirname(out)) || !statSync(dirname(out)).isDirectory()) {
    throw new UsageError(`--out ${JSON.stringify(outText)}: directory ${dirname(out)} does not exist`);
  }
  if (existsSync(out) && !statSync(out).isFile()) {
    throw new UsageError(`--out ${JSON.stringify(outText)} exists and is not a regular file`);
  }

  const accountId = (values.account as string | undefined) ?? defaults.accountId;
  if (!/^\d{12}$/.test(accountId)) {
    throw new UsageError(`--account must be a 12-digit AWS account id, got ${JSON.stringify(accountId)}`);
  }
  const region = (values.region as string | undefined) ?? defaults.region;
  if (!AWS_REGION.test(region)) {
    throw new UsageError(
      `--region must look like an AWS region such as us-east-1, got ${JSON.stringify(region)}`,
    );
  }
  if (!isAwsRegion(region)) {
    throw new UsageError(
      `--region must be a region that exists in the AWS SDK's partition data, such as us-east-1, got ${JSON.stringify(region)}`,
    );
  }

  const tagPairs: [string, string][] = [];
  for (const t of (values.tag as string[] | undefined) ?? []) {
    const eq = t.indexOf('=');
    if (eq < 0) throw new UsageError(`--tag must be key=value, got ${JSON.stringify(t)}`);
    const key = t.slice(0, eq);
    if (tagPairs.some(([k]) => k === key)) {
      throw new UsageError(`--tag ${JSON.stringify(key)} is given twice`);
    }
    tagPairs.push([key, t.slice(eq + 1)]);
  }

  try {
    const description = validateDescription(values.description, '--description');
    const tags = validateTags(Object.fromEntries(tagPairs), '--tag');
    const args: BulkArgs = { count: Number(countText), tags, accountId, region, out };
    if (description !== undefined) args.description = description;
    return args;
  } catch (err) {
    if (err instanceof ApiError) throw new UsageError(err.message);
    throw err;
  }
}
