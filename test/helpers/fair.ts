/**
 * What the fair-scheduling tests share (test/fair-scheduling.test.ts on one redis-server,
 * test/fair-scheduling-replicated.test.ts on a Cluster and behind Sentinels): the accounts, `npm run bulk`
 * as a process, and the backlog by class as /health shows it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { awsClient } from '../../devtools/aws-client.js';
import { nodeArgs } from '../../devtools/entry.js';
import type { ServiceProcess } from '../../devtools/processes.js';
import type { Tenant } from '../../shared/keys.js';
import type { Backlog } from '../../shared/scheduler.js';

const ROOT = new URL('../..', import.meta.url).pathname;

export const FLOODER = {
  accessKeyId: 'AKIAFLOOD',
  secretAccessKey: 'flood-secret',
  accountId: '111111111111',
};
export const POLITE = {
  accessKeyId: 'AKIAPOLITE',
  secretAccessKey: 'polite-secret',
  accountId: '222222222222',
};
export const BULK_TENANT: Tenant = { accountId: '333333333333', region: 'eu-west-1' };

/**
 * `npm run bulk` as a process, on the Redis `env` names (a URL, Cluster nodes or Sentinels, with their
 * passwords) and its prefix; resolves `done` with its exit code once it has exited.
 */
export function spawnBulk(count: number, out: string, env: Record<string, string>) {
  // The Redis variables of `env` that are set (as devtools/processes.ts passes them), and none of ours.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REDIS_')));
  const redisVars = Object.fromEntries(
    Object.entries(env).filter(([k, v]) => k.startsWith('REDIS_') && k !== 'REDIS_WAIT_REPLICAS' && v !== ''),
  );
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs('scripts/bulk.ts'),
      ...['--count', String(count), '--account', BULK_TENANT.accountId, '--region', BULK_TENANT.region],
      ...['--out', out],
    ],
    {
      cwd: ROOT,
      env: { ...base, LOG_LEVEL: 'silent', ...redisVars, CLIENT_CERTIFICATE_LIMIT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr })),
  );
  return { child, done };
}

/** The backlog by class, as the API's /health reports it. */
export async function backlog(api: ServiceProcess): Promise<Backlog> {
  const h = (await (await fetch(`${api.url}/health`)).json()) as { queue?: { backlog?: Backlog } };
  assert.ok(h.queue?.backlog, 'the health report shows the backlog by class');
  return h.queue.backlog;
}

/** An AWS SDK client of `api` with credential `c`, patient enough for a queue of work. */
export function clientOf(
  api: ServiceProcess,
  c: { accessKeyId: string; secretAccessKey: string },
): APIGatewayClient {
  return awsClient(api.url, { ...c, requestTimeoutMs: 90_000 });
}

/** The certificate ids `npm run bulk` wrote to `file` (NDJSON), in its order. */
export function ids(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { clientCertificateId: string }).clientCertificateId);
}
