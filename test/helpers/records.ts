import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { Queue } from 'bullmq';
import { ClientCertificateStore } from '../../shared/client-certificate-store.js';
import type { ClientCertificate } from '../../shared/client-certificate.js';
import { QUEUE_NAME } from '../../shared/jobs.js';
import { Keys, type Tenant } from '../../shared/keys.js';
import { createRedis, patientOptions, type RedisTarget, type RedisClient } from '../../shared/redis.js';
import type { Outcome } from '../../devtools/aws-client.js';

export const TENANT: Tenant = { accountId: '000000000000', region: 'us-east-1' };

/** The fields of a public client certificate record (with a description), sorted: never a key. */
export const RECORD_FIELDS = [
  'clientCertificateId',
  'createdDate',
  'description',
  'expirationDate',
  'pemEncodedCertificate',
  'tags',
];

/** A direct view of what a test service stored, for assertions from outside its processes. */
export interface StoreView {
  redis: RedisClient;
  store: ClientCertificateStore;
  queue: Queue;
  all(t?: Tenant): Promise<ClientCertificate[]>;
  close(): Promise<void>;
}

export function storeView(target: RedisTarget, prefix: string): StoreView {
  const redis = createRedis(target, patientOptions(), 'cc-test-view');
  redis.on('error', () => undefined);
  const keys = new Keys(prefix);
  const store = new ClientCertificateStore(redis, keys);
  const queue = new Queue(QUEUE_NAME, { connection: redis, prefix: keys.queuePrefix });
  queue.on('error', () => undefined);
  return {
    redis,
    store,
    queue,
    async all(t = TENANT) {
      const out: ClientCertificate[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await store.list(t, 500, after);
        out.push(...page.items);
        if (!page.last) return out;
        after = page.last;
      }
    },
    async close() {
      await queue.close().catch(() => undefined);
      redis.disconnect();
    },
  };
}

/**
 * The invariants every fault must keep: each answer is a 201 or a clean AWS-format 5xx; no
 * certificate exists twice (ids and public keys distinct); every 201's certificate is stored as
 * answered; and nothing is stored that no caller was told about.
 */
export async function assertConsistent(
  outcomes: Outcome[],
  view: StoreView,
  tenant: Tenant = TENANT,
): Promise<void> {
  for (const o of outcomes) {
    if (o.ok) continue;
    assert.ok(o.status !== undefined && o.status >= 500 && o.status < 600, `not a 5xx: ${JSON.stringify(o)}`);
    assert.match(o.type, /^(ServiceUnavailableException|InternalServerErrorException)$/, JSON.stringify(o));
    assert.ok(o.message.length > 0, 'error without a message');
  }
  const created = outcomes.flatMap((o) => (o.ok ? [o.cert] : []));
  const ids = created.map((c) => c.clientCertificateId!);
  assert.equal(new Set(ids).size, ids.length, 'an id was answered twice');
  for (const c of created) {
    const stored = await view.store.get(tenant, c.clientCertificateId!);
    assert.ok(stored, `answered ${c.clientCertificateId} but it is not stored`);
    assert.equal(stored.pemEncodedCertificate, c.pemEncodedCertificate);
  }
  const all = await view.all(tenant);
  assert.deepEqual(all.map((c) => c.clientCertificateId).sort(), [...ids].sort(), 'stored ≠ answered');
  const publicKeys = all.map((c) =>
    new X509Certificate(c.pemEncodedCertificate).publicKey
      .export({ type: 'spki', format: 'der' })
      .toString('hex'),
  );
  assert.equal(new Set(publicKeys).size, publicKeys.length, 'a key pair was used twice');
}
