import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Job, Queue, Worker } from 'bullmq';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { KeyVault } from '../shared/crypto/key-vault.js';
import {
  generateJobId,
  generateReturn,
  QUEUE_NAME,
  type GenerateData,
  type GenerateResult,
} from '../shared/jobs.js';
import { Keys } from '../shared/keys.js';
import { createLogger } from '../shared/logger.js';
import { createRedis, duplicateRedis, patientOptions, type RedisClient } from '../shared/redis.js';
import { createGenerateProcessor } from '../worker/generate-processor.js';
import { generateRsaKey, type KeySource } from '../worker/key-source.js';
import { startRedis, type TestRedis } from '../devtools/redis-server.js';

const TENANT = { accountId: '000000000000', region: 'us-east-1' };

describe('generate processor: first start and re-runs', () => {
  let redis: TestRedis;
  let conn: RedisClient;
  let queue: Queue<GenerateData, GenerateResult[]>;
  let bulkQueue: Queue<GenerateData, GenerateResult[]>;
  let store: ClientCertificateStore;
  let taken = 0;
  const counting: KeySource = {
    take: () => ((taken += 1), generateRsaKey(1024)),
    close: async () => {},
  };
  let processGenerate: ReturnType<typeof createGenerateProcessor>;
  let keys: Keys;

  before(async () => {
    redis = await startRedis();
    conn = createRedis(redis.url, patientOptions(), 'cc-processor-test');
    keys = new Keys('p');
    store = new ClientCertificateStore(conn, keys);
    queue = new Queue(QUEUE_NAME, { connection: conn, prefix: keys.queuePrefix });
    bulkQueue = new Queue('processor-test-bulk', { connection: conn, prefix: keys.queuePrefix });
    processGenerate = createGenerateProcessor({
      store,
      vault: new KeyVault([randomBytes(32).toString('base64')]),
      keySource: counting,
      log: createLogger('silent', 'test'),
    });
  });
  after(async () => {
    await queue?.close();
    await bulkQueue?.close();
    conn?.disconnect();
    await redis?.destroy();
  });

  /** A BullMQ job as the worker receives it on its `started`-th start. */
  const jobFor = (data: GenerateData, started: number) => {
    const job = new Job<GenerateData, GenerateResult[]>(queue, 'generate', data);
    job.attemptsStarted = started;
    return job;
  };

  /** A reserved id and the job data the API would enqueue for it. */
  const reserved = async (id: string): Promise<GenerateData> => {
    assert.equal(await store.reserve(TENANT, id, 60_000, 0), 'reserved');
    return { ...TENANT, clientCertificateId: id, tags: {}, deadline: Date.now() + 60_000 };
  };
  const pemOf = (r: GenerateResult) =>
    r.status === 'created' || r.status === 'exists' ? r.certificate.pemEncodedCertificate : '';
  /** The one result of a job of one certificate. */
  const one = async (job: Job<GenerateData>): Promise<GenerateResult> => {
    const results = await processGenerate(job);
    assert.equal(results.length, 1);
    return results[0]!;
  };

  it('issues on the first start, and a re-run returns the stored certificate without generating a key', async () => {
    const data = await reserved('proc01');

    const first = await one(jobFor(data, 1));
    assert.equal(first.status, 'created');
    assert.equal(taken, 1);
    const pem = pemOf(first);
    const x = new X509Certificate(pem);
    assert.ok(x.verify(x.publicKey));

    const rerun = await one(jobFor(data, 2));
    assert.equal(rerun.status, 'exists');
    assert.equal(taken, 1, 'a re-run of a stored job generates no key');
    assert.equal(pemOf(rerun), pem);
  });

  it('a duplicate first start still stores nothing twice: the create refuses, the stored record is answered', async () => {
    const data = await reserved('proc02');
    const a = await one(jobFor(data, 1));
    const b = await one(jobFor(data, 1));
    assert.equal(a.status, 'created');
    assert.equal(b.status, 'exists');
    assert.equal(pemOf(b), pemOf(a));
    assert.deepEqual(await store.count(TENANT), { existing: 2, pending: 0 });
  });

  /**
   * A bulk job of several certificates for reserved `ids`, in Redis as the bulk CLI enqueues it (so the
   * processor can redact it), on a queue of its own that no worker of these tests reads.
   */
  const queuedBulkJob = async (ids: string[], attempts = 2) => {
    for (const id of ids) assert.equal(await store.reserve(TENANT, id, 60_000, 0), 'reserved');
    const data: GenerateData = {
      ...TENANT,
      clientCertificateId: ids[0]!,
      clientCertificateIds: ids,
      description: 'edge fleet',
      tags: { team: 'ops' },
      deadline: Date.now() + 60_000,
      batchId: 'b0',
    };
    await bulkQueue.add('generate', data, { jobId: generateJobId(data), attempts });
    const job = (await Job.fromId<GenerateData, GenerateResult[]>(bulkQueue, generateJobId(data)))!;
    job.attemptsStarted = 1;
    return job;
  };
  const dataOf = async (jobId: string) => (await Job.fromId<GenerateData>(bulkQueue, jobId))!.data;

  it('a bulk job of several certificates issues each in order with a key of its own, then keeps only their ids', async () => {
    const ids = ['grp001', 'grp002', 'grp003'];
    const job = await queuedBulkJob(ids);
    const before = taken;
    const results = await processGenerate(job);
    assert.deepEqual(
      results.map((r) => r.status),
      ['created', 'created', 'created'],
    );
    assert.equal(taken, before + 3);
    const keysSeen = new Set<string>();
    for (const [i, r] of results.entries()) {
      assert.ok(r.status === 'created');
      assert.equal(r.certificate.clientCertificateId, ids[i]);
      assert.equal(r.certificate.description, 'edge fleet');
      const x = new X509Certificate(r.certificate.pemEncodedCertificate);
      assert.ok(x.verify(x.publicKey));
      keysSeen.add(x.publicKey.export({ type: 'spki', format: 'pem' }) as string);
      const stored = await store.get(TENANT, ids[i]!);
      assert.equal(stored?.pemEncodedCertificate, r.certificate.pemEncodedCertificate);
      assert.deepEqual({ ...stored?.tags }, { team: 'ops' });
    }
    assert.equal(keysSeen.size, 3, 'no key is shared');
    assert.deepEqual(generateReturn(results), {
      status: 'created',
      clientCertificateId: 'grp001',
      outcomes: ['created', 'created', 'created'],
    });
    // The description and tags now live in the records alone (a Delete leaves such a job alone).
    assert.deepEqual(await dataOf(job.id!), {
      ...TENANT,
      clientCertificateId: 'grp001',
      clientCertificateIds: ids,
      tags: {},
      deadline: 0,
    });

    // A re-run (its worker lost the lock before finishing the job) generates no key.
    const rerun = (await Job.fromId<GenerateData, GenerateResult[]>(bulkQueue, job.id!))!;
    rerun.attemptsStarted = 2;
    const again = await processGenerate(rerun);
    assert.deepEqual(
      again.map((r) => r.status),
      ['exists', 'exists', 'exists'],
    );
    assert.equal(taken, before + 3);
  });

  it('a job of several whose second id was released creates the others and says which was not', async () => {
    const ids = ['grp011', 'grp012', 'grp013'];
    const job = await queuedBulkJob(ids);
    // As a re-run of the batch does for an id it gave up on: released, so no job may create it.
    assert.equal(await store.settle(TENANT, 'grp012'), undefined);
    const results = await processGenerate(job);
    assert.deepEqual(
      results.map((r) => r.status),
      ['created', 'cancelled', 'created'],
    );
    assert.equal(await store.get(TENANT, 'grp012'), undefined);
    assert.deepEqual(generateReturn(results), {
      status: 'cancelled',
      clientCertificateId: 'grp011',
      outcomes: ['created', 'cancelled', 'created'],
    });
  });

  it('a job of several that throws keeps its data for the retry, and gives it up after its last attempt', async () => {
    let n = 0;
    const failing = createGenerateProcessor({
      store,
      vault: new KeyVault([randomBytes(32).toString('base64')]),
      // Every key after the first fails.
      keySource: {
        take: () => (++n > 1 ? Promise.reject(new Error('no entropy')) : generateRsaKey(1024)),
        close: async () => {},
      },
      log: createLogger('silent', 'test'),
    });
    const job = await queuedBulkJob(['grp021', 'grp022'], 2);
    job.attemptsMade = 0;
    await assert.rejects(failing(job), /no entropy/);
    assert.equal((await dataOf(job.id!)).description, 'edge fleet', 'kept for the retry');
    job.attemptsMade = 1;
    job.attemptsStarted = 2;
    await assert.rejects(failing(job), /no entropy/);
    assert.equal((await dataOf(job.id!)).description, undefined, 'the last attempt: redacted');
    assert.ok(await store.get(TENANT, 'grp021'), 'the first certificate stays, stored by the first attempt');
  });

  it('BullMQ hands a job to its first run as attemptsStarted 1 (what the processor counts on)', async () => {
    const data = await reserved('proc03');
    const seen: number[] = [];
    const connection = duplicateRedis(conn, 'cc-processor-test-worker');
    const worker = new Worker<GenerateData, GenerateResult[]>(
      QUEUE_NAME,
      (job) => (seen.push(job.attemptsStarted), processGenerate(job)),
      { connection, prefix: keys.queuePrefix },
    );
    try {
      const before = taken;
      const jobId = generateJobId(data);
      const finished = new Promise<GenerateResult[]>((resolve, reject) => {
        worker.on('completed', (j, r) => j.id === jobId && resolve(r));
        worker.on('failed', (j, err) => j?.id === jobId && reject(err));
      });
      await queue.add('generate', data, { jobId });
      assert.equal((await finished)[0]!.status, 'created');
      assert.deepEqual(seen, [1]);
      assert.equal(taken, before + 1);
    } finally {
      await worker.close();
      connection.disconnect();
    }
  });
});
