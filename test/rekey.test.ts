import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { clientTlsOptions } from '../shared/client-tls.js';
import { parseClusterNodes } from '../shared/config.js';
import { KeyVault, keyAad } from '../shared/crypto/key-vault.js';
import { Keys, type Tenant } from '../shared/keys.js';
import {
  createRedis,
  isCluster,
  patientOptions,
  type RedisClient,
  type RedisTarget,
} from '../shared/redis.js';
import { runRekey } from '../scripts/rekey/reseal.js';
import { nodeArgs } from '../devtools/entry.js';
import { awsClient, showOutcome, generate } from '../devtools/aws-client.js';
import { useRedis, useRedisCluster } from './helpers/fixture.js';
import { ROOT, killAll, serviceEnv, spawnApi, spawnWorker } from '../devtools/processes.js';
import { startService } from '../devtools/service.js';
import { signedFetch } from '../devtools/signed-fetch.js';

const newKey = () => randomBytes(32).toString('base64');
const idOf = (key: string) => KeyVault.keyId(Buffer.from(key, 'base64'));
const US: Tenant = { accountId: '000000000000', region: 'us-east-1' };
const EU: Tenant = { accountId: '000000000000', region: 'eu-west-1' };

interface Issued {
  tenant: Tenant;
  id: string;
  pem: string;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `npm run rekey` as an operator runs it: its own process, configured by the environment only. */
function rekey(args: string[], env: Record<string, string>): Promise<Run> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', ...env };
  for (const v of [
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'MASTER_KEY',
    'MASTER_KEYS_PREVIOUS',
    'MASTER_KEY_FILE',
  ]) {
    if (!(v in env)) delete childEnv[v];
  }
  const child = spawn(process.execPath, [...nodeArgs('scripts/rekey.ts'), ...args], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Issues `n` certificates through the running service's API with the AWS SDK. */
async function issue(client: APIGatewayClient, tenant: Tenant, n: number): Promise<Issued[]> {
  const out: Issued[] = [];
  for (let i = 0; i < n; i++) {
    const o = await generate(client, { description: `rekey ${i}`, tags: { n: String(i) } });
    assert.ok(o.ok, showOutcome(o));
    out.push({ tenant, id: o.cert.clientCertificateId!, pem: o.cert.pemEncodedCertificate! });
  }
  return out;
}

/** Every hash under `prefix` (records and their tags), field by field, from every node. */
async function snapshot(redis: RedisClient, prefix: string): Promise<Map<string, Record<string, string>>> {
  const nodes = isCluster(redis) ? redis.nodes('master') : [redis];
  const out = new Map<string, Record<string, string>>();
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:{*}:cert:*`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) out.set(k, await redis.hgetall(k));
    } while (cursor !== '0');
  }
  return out;
}

/**
 * Opens each certificate's sealed key through the same call the mTLS client uses, with `vault`
 * only, and checks that the key is the certificate's own.
 */
async function assertOpens(
  store: ClientCertificateStore,
  vault: KeyVault,
  certs: Issued[],
): Promise<Buffer[]> {
  const ders: Buffer[] = [];
  for (const c of certs) {
    const sealed = await store.getEncryptedKey(c.tenant, c.id);
    assert.ok(sealed, `no sealed key for ${c.id}`);
    assert.equal(KeyVault.envelopeKeyId(sealed), vault.currentKeyId, `${c.id} is not under the current key`);
    const tls = await clientTlsOptions({ store, vault, ...c.tenant, id: c.id });
    assert.equal(tls.cert, c.pem);
    const pub = createPublicKey(createPrivateKey(tls.key));
    assert.ok(new X509Certificate(c.pem).publicKey.equals(pub), `${c.id}: the key is not the certificate's`);
    ders.push(vault.decrypt(sealed, keyAad(c.tenant.accountId, c.tenant.region, c.id)));
  }
  return ders;
}

/** Fragments any printed form of these private keys would contain. */
function assertNoKeyMaterial(text: string, ders: Buffer[]): void {
  assert.doesNotMatch(text, /PRIVATE KEY/);
  for (const der of ders) {
    for (const enc of ['base64', 'base64url', 'hex'] as const) {
      assert.ok(!text.includes(der.toString(enc).slice(100, 140)), `key material (${enc}) in the output`);
    }
  }
}

describe('npm run rekey', () => {
  const fx = useRedis();

  it('re-seals every record under the new key, so each opens with it alone; a dry run and a re-run change nothing', async () => {
    const [a, b] = [newKey(), newKey()];
    const prefix = `rk${randomBytes(3).toString('hex')}`;
    const svc = await startService(fx.redis.url, { prefix, masterKeys: [a] });
    let certs: Issued[];
    try {
      certs = [
        ...(await issue(awsClient(svc.api.url), US, 3)),
        ...(await issue(awsClient(svc.api.url, { region: 'eu-west-1' }), EU, 2)),
      ];
    } finally {
      await svc.close();
    }
    const view = createRedis(fx.redis.url, patientOptions(), 'cc-test-rekey');
    const store = new ClientCertificateStore(view, new Keys(prefix));
    try {
      const before = await snapshot(view, prefix);
      assert.equal(before.size, 10, 'five records and their five tag hashes');
      const env = { REDIS_URL: fx.redis.url, REDIS_PREFIX: prefix, MASTER_KEY: b, MASTER_KEYS_PREVIOUS: a };

      const dry = await rekey(['--dry-run'], env);
      assert.equal(dry.code, 0, dry.stderr + dry.stdout);
      assert.match(dry.stdout, /dry run: nothing written/);
      assert.match(dry.stdout, /records scanned\s+5\n/);
      assert.match(dry.stdout, /would re-seal\s+5\n/);
      assert.match(dry.stdout, new RegExp(`sealed under, before\\s+${idOf(a)}: 5\\n`));
      assert.deepEqual(await snapshot(view, prefix), before, 'a dry run wrote something');

      const run = await rekey([], env);
      assert.equal(run.code, 0, run.stderr + run.stdout);
      assert.match(run.stdout, /records scanned\s+5\n/);
      assert.match(run.stdout, /re-sealed\s+5\n/);
      assert.match(run.stdout, /already current\s+0\n/);
      assert.match(run.stdout, /failed \/ unreadable\s+0\n/);
      assert.match(run.stdout, /the keys in MASTER_KEYS_PREVIOUS are no longer needed/);

      // Only the sealed key changed: description, PEM, dates and tags are as they were.
      const afterRun = await snapshot(view, prefix);
      assert.deepEqual([...afterRun.keys()].sort(), [...before.keys()].sort());
      for (const [k, fields] of before) {
        const now = afterRun.get(k)!;
        if (!k.endsWith(':tags')) assert.notEqual(now.key, fields.key, `${k} was not re-sealed`);
        assert.deepEqual({ ...now, key: undefined }, { ...fields, key: undefined }, k);
      }
      // With the old key removed: every record opens, and holds its certificate's key.
      const ders = await assertOpens(store, new KeyVault([b]), certs);
      for (const c of certs) {
        const sealed = (await store.getEncryptedKey(c.tenant, c.id))!;
        assert.throws(
          () => new KeyVault([a]).decrypt(sealed, keyAad(c.tenant.accountId, c.tenant.region, c.id)),
          {
            message: /unknown master key/,
          },
        );
      }

      const again = await rekey([], env);
      assert.equal(again.code, 0, again.stderr + again.stdout);
      assert.match(again.stdout, /re-sealed\s+0\n/);
      assert.match(again.stdout, /already current\s+5\n/);
      assert.deepEqual(await snapshot(view, prefix), afterRun, 'a re-run rewrote records');
      // Once A is gone from the configuration too, nothing is left that needs it.
      const withoutA = await rekey([], { ...env, MASTER_KEYS_PREVIOUS: '' });
      assert.equal(withoutA.code, 0, withoutA.stderr + withoutA.stdout);
      assert.match(withoutA.stdout, /already current\s+5\n/);

      for (const r of [dry, run, again, withoutA]) assertNoKeyMaterial(r.stdout + r.stderr, ders);
    } finally {
      view.disconnect();
    }
  });

  it('reports a record sealed under an unknown key and a damaged one by id and reason, exits 1, and re-seals the rest', async () => {
    const [a, b, unknown] = [newKey(), newKey(), newKey()];
    const prefix = `rk${randomBytes(3).toString('hex')}`;
    const svcA = await startService(fx.redis.url, { prefix, masterKeys: [a] });
    let good: Issued[];
    try {
      good = await issue(awsClient(svcA.api.url), US, 3);
    } finally {
      await svcA.close();
    }
    // Another deployment of the same Redis prefix, under a master key nobody configured for rekey.
    const svcU = await startService(fx.redis.url, { prefix, masterKeys: [unknown] });
    let stranger: Issued;
    try {
      stranger = (await issue(awsClient(svcU.api.url, { region: 'eu-west-1' }), EU, 1))[0]!;
    } finally {
      await svcU.close();
    }
    const view = createRedis(fx.redis.url, patientOptions(), 'cc-test-rekey');
    const keys = new Keys(prefix);
    const store = new ClientCertificateStore(view, keys);
    try {
      // A damaged record: one character of its ciphertext changed, so AES-GCM refuses it.
      const damaged = good.pop()!;
      const sealed = (await store.getEncryptedKey(damaged.tenant, damaged.id))!;
      const i = sealed.length - 10;
      const broken = sealed.slice(0, i) + (sealed[i] === 'A' ? 'B' : 'A') + sealed.slice(i + 1);
      await view.hset(keys.certificate(damaged.tenant, damaged.id), 'key', broken);
      const strangerSealed = (await store.getEncryptedKey(stranger.tenant, stranger.id))!;

      const env = { REDIS_URL: fx.redis.url, REDIS_PREFIX: prefix, MASTER_KEY: b, MASTER_KEYS_PREVIOUS: a };
      for (const args of [['--dry-run'], []]) {
        const r = await rekey(args, env);
        assert.equal(r.code, 1, r.stderr + r.stdout);
        assert.match(r.stdout, /records scanned\s+4\n/);
        assert.match(r.stdout, /failed \/ unreadable\s+2\n/);
        assert.match(
          r.stdout,
          new RegExp(
            `000000000000/eu-west-1/${stranger.id}: sealed under master key ${idOf(unknown)}, which is neither MASTER_KEY nor in MASTER_KEYS_PREVIOUS\\n`,
          ),
        );
        assert.match(
          r.stdout,
          new RegExp(`000000000000/us-east-1/${damaged.id}: does not open under master key ${idOf(a)} \\(`),
        );
        assert.match(r.stdout, /some records could not be opened or re-sealed/);
        assert.doesNotMatch(r.stdout, /no longer needed/);
      }
      // The readable records were re-sealed all the same; the unreadable ones were left exactly as they were.
      await assertOpens(store, new KeyVault([b]), good);
      assert.equal(await store.getEncryptedKey(damaged.tenant, damaged.id), broken);
      assert.equal(await store.getEncryptedKey(stranger.tenant, stranger.id), strangerSealed);
    } finally {
      view.disconnect();
    }
  });

  it('a record deleted during the run stays deleted, and a key or description written meanwhile is kept', async () => {
    const [a, b] = [newKey(), newKey()];
    const prefix = `rk${randomBytes(3).toString('hex')}`;
    const svc = await startService(fx.redis.url, { prefix, masterKeys: [a] });
    try {
      const [deleted, described, raced, plain] = await issue(awsClient(svc.api.url), US, 4);
      const store = svc.store;
      const vault = new KeyVault([b, a]);
      let racedWith: string | undefined;
      // The store as the run sees it, with the API's writes landing between its read and its write.
      const racing = Object.create(store) as ClientCertificateStore;
      racing.replaceEncryptedKey = async (t, id, expected, next) => {
        if (id === deleted!.id) {
          const gone = await signedDelete(svc.api.url, id);
          assert.equal(gone, 202);
        } else if (id === described!.id) {
          assert.equal(await store.setDescription(t, id, 'renamed meanwhile'), true);
        } else if (id === raced!.id) {
          // Another rekey run got there first.
          const plainKey = vault.decrypt(expected, keyAad(t.accountId, t.region, id));
          racedWith = vault.encrypt(plainKey, keyAad(t.accountId, t.region, id));
          assert.equal(await store.replaceEncryptedKey(t, id, expected, racedWith), 'replaced');
        }
        return store.replaceEncryptedKey(t, id, expected, next);
      };

      const r = await runRekey({ store: racing, vault });
      assert.deepEqual(
        { ...r, failures: r.failures.length },
        {
          scanned: 4,
          resealed: 2,
          current: 1,
          vanished: 1,
          failed: 0,
          failures: 0,
          sealedUnder: { [idOf(a)]: 4 },
          interrupted: false,
        },
      );
      // Deleted stays deleted: no half record holding only a key, no tags, not in the index.
      const k = svc.keys;
      assert.equal(await svc.redis.exists(k.certificate(US, deleted!.id), k.tags(US, deleted!.id)), 0);
      assert.equal(await svc.redis.zscore(k.index(US), deleted!.id), null);
      assert.equal(await store.get(US, deleted!.id), undefined);
      assert.equal((await store.get(US, described!.id))?.description, 'renamed meanwhile');
      assert.equal(await store.getEncryptedKey(US, raced!.id), racedWith, 'the concurrent write was undone');
      await assertOpens(store, new KeyVault([b]), [described!, raced!, plain!]);
      // The API still serves all three, the deleted one is still a 404.
      assert.equal((await store.list(US, 10)).items.length, 3);
    } finally {
      await svc.close();
    }
  });

  it('stops after the records in hand when aborted, and a re-run finishes the job', async () => {
    const [a, b] = [newKey(), newKey()];
    const prefix = `rk${randomBytes(3).toString('hex')}`;
    const svc = await startService(fx.redis.url, { prefix, masterKeys: [a] });
    try {
      const certs = await issue(awsClient(svc.api.url), US, 3);
      const vault = new KeyVault([b, a]);
      const abort = new AbortController();
      const first = await runRekey({
        store: svc.store,
        vault,
        concurrency: 1,
        signal: abort.signal,
        progress: (c) => c.resealed === 1 && abort.abort(),
      });
      assert.equal(first.interrupted, true);
      assert.equal(first.resealed, 1);
      const second = await runRekey({ store: svc.store, vault });
      assert.deepEqual([second.scanned, second.resealed, second.current], [3, 2, 1]);
      await assertOpens(svc.store, new KeyVault([b]), certs);
    } finally {
      await svc.close();
    }
  });

  it('refuses bad arguments and a missing MASTER_KEY with exit code 2, creating no key file', async () => {
    const bad = await rekey(['--dry-runn'], { REDIS_URL: fx.redis.url, MASTER_KEY: newKey() });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Unknown option '--dry-runn'/);
    assert.match(bad.stderr, /usage: npm run rekey/);
    const dir = mkdtempSync(join(tmpdir(), 'cc-rekey-'));
    try {
      const file = join(dir, 'master.key');
      const noKey = await rekey([], { REDIS_URL: fx.redis.url, MASTER_KEY_FILE: file });
      assert.equal(noKey.code, 2);
      assert.match(noKey.stderr, /MASTER_KEY is not set and MASTER_KEY_FILE .*master\.key does not exist/);
      assert.equal(existsSync(file), false, 'rekey invented a master key');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm run rekey on a Redis Cluster', () => {
  const fx = useRedisCluster(3);

  it('walks every master and re-seals the records of tenants on different nodes', async () => {
    const [a, b] = [newKey(), newKey()];
    // Regions whose tenants live on three different masters.
    const owners = new Map<number, string>();
    for (const region of ['us-east-1', 'eu-west-1', 'ap-south-1', 'us-west-2', 'sa-east-1', 'eu-north-1']) {
      const port = await fx.cluster.ownerOf(`{000000000000:${region}}`);
      if (!owners.has(port)) owners.set(port, region);
    }
    assert.ok(owners.size >= 2, 'every tenant landed on one master');
    const env = serviceEnv({ clusterNodes: fx.cluster.seeds }, { MASTER_KEY: a });
    const [api] = await Promise.all([spawnApi(env), spawnWorker(env)]);
    const certs: Issued[] = [];
    for (const region of owners.values()) {
      certs.push(...(await issue(awsClient(api.url, { region }), { accountId: '000000000000', region }, 2)));
    }
    await killAll();

    const target: RedisTarget = { redisClusterNodes: parseClusterNodes(fx.cluster.seeds) as never };
    const view = createRedis(target, patientOptions(), 'cc-test-rekey');
    try {
      const run = await rekey([], {
        REDIS_CLUSTER_NODES: fx.cluster.seeds,
        REDIS_PREFIX: env.REDIS_PREFIX!,
        MASTER_KEY: b,
        MASTER_KEYS_PREVIOUS: a,
      });
      assert.equal(run.code, 0, run.stderr + run.stdout);
      assert.match(run.stdout, new RegExp(`records scanned\\s+${certs.length}\\n`));
      assert.match(run.stdout, new RegExp(`re-sealed\\s+${certs.length}\\n`));
      await assertOpens(
        new ClientCertificateStore(view, new Keys(env.REDIS_PREFIX!)),
        new KeyVault([b]),
        certs,
      );
    } finally {
      view.disconnect();
    }
  });
});

/** DeleteClientCertificate through the API, as a client would delete during the run. */
async function signedDelete(url: string, id: string): Promise<number> {
  const res = await signedFetch(url, `/clientcertificates/${id}`, { method: 'DELETE' });
  await res.arrayBuffer();
  return res.status;
}
