import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { killAll, serviceEnv, spawnApi, spawnWorker, type ServiceProcess } from '../devtools/processes.js';
import { waitFor } from '../devtools/redis-server.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { ecCa, opensslAsync } from '../devtools/tls.js';
import { Keys } from '../shared/keys.js';
import { normalSerial } from '../shared/revocation-store.js';
import { TENANT } from './helpers/records.js';
import { startReplicatedCluster, type TestReplicatedCluster } from './helpers/redis-replicated.js';

/** Region of the certificates deleted while the shard is cut off: its tenant has no revocation before. */
const REGIONS_B = ['us-west-2', 'eu-west-1', 'ap-southeast-2', 'eu-central-1', 'us-east-2', 'ca-central-1'];

interface Issued {
  id: string;
  region: string;
  pem: string;
  serial: string;
  /** When its Delete was answered 202. */
  deleted?: boolean;
}

const openssl = async (args: string[]) => (await opensslAsync(args)).out;

/**
 * CA mode on a 3-master, 3-replica Redis Cluster. The serial index (OCSP) and the set of tenants with
 * revocations (CRL) live in the queue's slot `{prefix}`; the prefix and the second region are chosen
 * so that neither tenant's records are on that shard. Steps: issue certificates in two regions, delete
 * two of the first region's (202), read the CRL (the API's tenant reconcile runs then, not again for
 * 5 minutes); cut the `{prefix}` shard's replica off (SIGSTOP and CLIENT KILL TYPE replica), so what
 * its master takes from then on exists nowhere else; delete two of the second region's certificates
 * (its first revocations) and issue three more in the first region; kill that master and resume its
 * replica, which takes over. Then every certificate answered 201 and not deleted must be `good` over
 * OCSP (real `openssl ocsp`), every one deleted with a 202 `revoked`, and the CRL must list every
 * deleted serial.
 */
async function scenario(cluster: TestReplicatedCluster, waitReplicas: number) {
  const dir = mkdtempSync(join(tmpdir(), 'failover-ca-'));
  const ca = ecCa('Failover Test CA');
  writeFileSync(join(dir, 'ca.pem'), ca.cert);
  writeFileSync(join(dir, 'ca.key'), ca.key);
  // A prefix and a second region whose tenants are not on the `{prefix}` shard.
  let env!: Record<string, string>;
  let regionB: string | undefined;
  let shard!: Awaited<ReturnType<TestReplicatedCluster['shardOf']>>;
  for (let i = 0; i < 50 && !regionB; i++) {
    env = serviceEnv(
      { clusterNodes: cluster.seeds },
      {
        REDIS_WAIT_REPLICAS: String(waitReplicas),
        REDIS_WAIT_TIMEOUT_MS: '500',
        GENERATE_TIMEOUT_MS: '5000',
        KEY_POOL_SIZE: '8',
        WORKER_CONCURRENCY: '2',
        CERT_ISSUER: 'ca',
        CA_CERT_FILE: join(dir, 'ca.pem'),
        CA_KEY_FILE: join(dir, 'ca.key'),
        LOG_LEVEL: 'info',
      },
    );
    const keys = new Keys(env.REDIS_PREFIX!);
    shard = await cluster.shardOf(keys.caSerials);
    if ((await cluster.shardOf(keys.index(TENANT))).master === shard.master) continue;
    for (const r of REGIONS_B) {
      if ((await cluster.shardOf(keys.index({ ...TENANT, region: r }))).master !== shard.master) {
        regionB = r;
        break;
      }
    }
  }
  assert.ok(regionB, 'no prefix and region off the {prefix} shard');
  const [api, worker] = await Promise.all([spawnApi(env), spawnWorker(env)]);
  const issued: Issued[] = [];
  const statuses: Record<string, number[]> = { generate: [], delete: [] };
  const generate = async (region: string) => {
    const res = await signedFetch(api.url, '/clientcertificates', { method: 'POST', body: '{}', region });
    statuses.generate!.push(res.status);
    if (res.status !== 201) return undefined;
    const c = (await res.json()) as { clientCertificateId: string; pemEncodedCertificate: string };
    const x = new X509Certificate(c.pemEncodedCertificate);
    const one: Issued = {
      id: c.clientCertificateId,
      region,
      pem: c.pemEncodedCertificate,
      serial: normalSerial(x.serialNumber),
    };
    issued.push(one);
    return one;
  };
  const remove = async (c: Issued) => {
    const res = await signedFetch(api.url, `/clientcertificates/${c.id}`, {
      method: 'DELETE',
      region: c.region,
    });
    statuses.delete!.push(res.status);
    if (res.status === 202) c.deleted = true;
  };

  try {
    const a = [];
    for (let i = 0; i < 6; i++) a.push(await generate(TENANT.region));
    const b = [];
    for (let i = 0; i < 4; i++) b.push(await generate(regionB));
    assert.deepEqual(statuses.generate, Array(10).fill(201), 'issued before the cut');
    await remove(a[0]!);
    await remove(a[1]!);
    assert.deepEqual(statuses.delete, [202, 202]);
    assert.equal((await fetch(`${api.url}/ca/crl`)).status, 200);

    // Cut the {prefix} shard's replica off: what its master takes now exists nowhere else.
    for (const r of shard.replicas) r.pause();
    await shard.master.cli('CLIENT', 'KILL', 'TYPE', 'replica');
    await remove(b[0]!);
    await remove(b[1]!);
    for (let i = 0; i < 3; i++) await generate(TENANT.region);
    const inWindow = { generate: statuses.generate!.slice(10), delete: statuses.delete!.slice(2) };

    await shard.master.kill();
    for (const r of shard.replicas) r.resume();
    const promoted = shard.replicas[0]!;
    await waitFor(async () => (await promoted.cli('ROLE')).startsWith('master'), 20_000, 100);
    // Back as the new master's replica, as an orchestrator would restart it.
    await shard.master.respawn();

    // OCSP: one request naming every certificate answered 201, asked until the API answers again.
    const files = issued.map((c, i) => {
      const p = join(dir, `c${i}.pem`);
      writeFileSync(p, c.pem);
      return p;
    });
    const certArgs = files.flatMap((f) => ['-cert', f]);
    let ocsp = '';
    await waitFor(
      async () => {
        ocsp = await openssl([
          'ocsp',
          '-issuer',
          join(dir, 'ca.pem'),
          ...certArgs,
          '-url',
          `${api.url}/ca/ocsp`,
          '-CAfile',
          join(dir, 'ca.pem'),
        ]);
        return /Response verify OK/.test(ocsp);
      },
      30_000,
      250,
    ).catch(() => undefined);
    const answered = new Map(
      issued.map((c, i) => [c, new RegExp(`${files[i]}: (\\w+)`).exec(ocsp)?.[1] ?? 'none']),
    );
    const wrongOcsp = issued
      .filter((c) => answered.get(c) !== (c.deleted ? 'revoked' : 'good'))
      .map((c) => `${c.region}/${c.id} deleted=${c.deleted === true}: ${answered.get(c)}`);

    // The CRL, asked until the API signs one again; give it the refresh period (2 s) to list everything.
    let crlText = '';
    const missingFromCrl = () =>
      issued
        .filter((c) => c.deleted && !new RegExp(`Serial Number: 0*${c.serial}\\b`, 'i').test(crlText))
        .map((c) => `${c.region}/${c.id}`);
    await waitFor(
      async () => {
        const res = await fetch(`${api.url}/ca/crl`).catch(() => undefined);
        if (res?.status !== 200) return false;
        writeFileSync(join(dir, 'crl.der'), Buffer.from(await res.arrayBuffer()));
        crlText = await openssl(['crl', '-inform', 'DER', '-in', join(dir, 'crl.der'), '-noout', '-text']);
        return missingFromCrl().length === 0;
      },
      10_000,
      500,
    ).catch(() => undefined);
    return {
      inWindow,
      issued: issued.length,
      deleted: issued.filter((c) => c.deleted).length,
      ocspVerified: /Response verify OK/.test(ocsp),
      wrongOcsp,
      missingFromCrl: missingFromCrl(),
      apiWarnings: api.logs
        .filter((l) => (l.level ?? 0) >= 40)
        .map((l) => String(l.msg))
        .slice(0, 10),
    };
  } finally {
    await Promise.all([api, worker].map((p: ServiceProcess) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('CA mode: OCSP and the CRL after a Redis Cluster failover of the {prefix} shard', () => {
  let cluster: TestReplicatedCluster | undefined;
  after(async () => {
    await killAll();
    await cluster?.destroy();
  });

  it('with REDIS_WAIT_REPLICAS=1: OCSP answers revoked for every 202-deleted certificate and good for every live one; the CRL lists every deleted serial', async (t) => {
    cluster = await startReplicatedCluster(3);
    const r = await scenario(cluster, 1);
    t.diagnostic(JSON.stringify(r));
    assert.ok(r.ocspVerified, 'openssl ocsp verified an answer after the failover');
    assert.deepEqual(r.wrongOcsp, []);
    assert.deepEqual(r.missingFromCrl, []);
    // What the cut-off shard could not confirm was refused, not acknowledged.
    assert.deepEqual(r.inWindow, { generate: [503, 503, 503], delete: [503, 503] });
    await killAll();
    await cluster.destroy();
    cluster = undefined;
  });

  it('with REDIS_WAIT_REPLICAS=0 (the default) the same scenario acknowledges what the failover then loses', async (t) => {
    cluster = await startReplicatedCluster(3);
    const r = await scenario(cluster, 0);
    t.diagnostic(JSON.stringify(r));
    assert.deepEqual(r.inWindow, { generate: [201, 201, 201], delete: [202, 202] });
    assert.ok(r.ocspVerified, 'openssl ocsp verified an answer after the failover');
    // The three certificates issued in the window lost their index entry: unknown, though live.
    assert.equal(r.wrongOcsp.filter((w) => w.endsWith(': unknown')).length, 3, r.wrongOcsp.join('; '));
    // The second region's first revocations lost its tenant registration: the CRL misses them.
    assert.equal(r.missingFromCrl.length, 2, r.missingFromCrl.join('; '));
  });
});
