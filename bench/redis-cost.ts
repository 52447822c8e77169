/**
 * Redis cost per certificate, for docs/scaling.md: commands per Generate and per Delete (INFO
 * commandstats deltas), memory per stored record (MEMORY USAGE of the record and tag hashes) and per
 * retained completed job. Starts its own redis-server and an in-process API and worker.
 * Run: npx tsx bench/redis-cost.ts [certificates=100]
 */
import { execFileSync } from 'node:child_process';
import { DEV_CREDENTIAL } from '../api/auth/credentials.js';
import { awsClient, generate } from '../devtools/aws-client.js';
import { startRedis } from '../devtools/redis-server.js';
import { startService } from '../devtools/service.js';
import type { Tenant } from '../shared/keys.js';
import { DeleteClientCertificateCommand } from '@aws-sdk/client-api-gateway';

/** The development credential's account, in the region the SDK client signs for. */
const TENANT: Tenant = { accountId: DEV_CREDENTIAL.accountId, region: 'us-east-1' };

const n = Number(process.argv[2] ?? 100);
const redis = await startRedis();
const cli = (...a: string[]) =>
  execFileSync('redis-cli', ['-p', String(redis.port), ...a])
    .toString()
    .trim();
const stats = () => {
  const out: Record<string, number> = {};
  for (const line of cli('INFO', 'commandstats').split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
};
const diff = (a: Record<string, number>, b: Record<string, number>) => {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) if (v - (a[k] ?? 0) > 0) d[k] = (v - (a[k] ?? 0)) / n;
  return d;
};
const svc = await startService(redis.url, { workers: 1, clientCertificateLimit: 0 });
const client = awsClient(svc.api.url);
try {
  for (let i = 0; i < 5; i++) await generate(client); // warm: scripts loaded, connections open
  await new Promise((r) => setTimeout(r, 6000)); // one heartbeat period, so idle traffic is visible
  const idle0 = stats();
  await new Promise((r) => setTimeout(r, 10_000));
  const idle = diff(idle0, stats());
  const s0 = stats();
  const t0 = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const o = await generate(client, { description: `cert ${i}`, tags: { team: 'payments', env: 'prod' } });
    if (!o.ok) throw new Error(o.message);
    ids.push(o.cert.clientCertificateId!);
  }
  const genMs = Date.now() - t0;
  const s1 = stats();
  const rec = svc.keys.certificate(TENANT, ids[0]!);
  const tags = svc.keys.tags(TENANT, ids[0]!);
  const recordBytes = Number(cli('MEMORY', 'USAGE', rec, 'SAMPLES', '0'));
  const tagBytes = Number(cli('MEMORY', 'USAGE', tags, 'SAMPLES', '0'));
  const jobKey = `${svc.keys.queuePrefix}:client-certificates:gen-${TENANT.accountId}-${TENANT.region}-${ids[0]}`;
  const jobBytes = Number(cli('MEMORY', 'USAGE', jobKey, 'SAMPLES', '0'));
  const used0 = Number(/used_memory:(\d+)/.exec(cli('INFO', 'memory'))![1]);
  for (const id of ids) await client.send(new DeleteClientCertificateCommand({ clientCertificateId: id }));
  const s2 = stats();
  const used1 = Number(/used_memory:(\d+)/.exec(cli('INFO', 'memory'))![1]);
  const perGenerate = diff(s0, s1);
  const perDelete = diff(s1, s2);
  const sum = (d: Record<string, number>) =>
    Math.round(Object.values(d).reduce((a, b) => a + b, 0) * 10) / 10;
  // Idle traffic (heartbeats, watchdog, QueueEvents' blocking reads) over the generation time, per certificate.
  const idlePerCert = (sum(idle) / 10_000) * (genMs / n);
  process.stdout.write(
    `${JSON.stringify(
      {
        certificates: n,
        commandsPerGenerate: sum(perGenerate),
        idleCommandsIncludedPerGenerate: Math.round(idlePerCert * 10) / 10,
        perGenerate,
        commandsPerDelete: sum(perDelete),
        perDelete,
        recordHashBytes: recordBytes,
        tagHashBytes: tagBytes,
        completedJobHashBytes: jobBytes,
        usedMemoryFreedByDeletesPerCert: Math.round((used0 - used1) / n),
      },
      null,
      2,
    )}\n`,
  );
} finally {
  client.destroy();
  await svc.close();
  await redis.destroy();
}
