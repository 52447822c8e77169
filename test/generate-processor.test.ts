import assert from 'node:assert/strict';
import { randomBytes, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Job, Queue, Worker } from 'bullmq';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { KeyVault } from '../shared/crypto/key-vault.js';
import { generateJobId, QUEUE_NAME, type GenerateData, type GenerateResult } from '../shared/jobs.js';
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
  let queue: Queue<GenerateData, GenerateResult>;
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
    processGenerate = createGenerateProcessor({
      store,
      vault: new KeyVault([randomBytes(32).toString('base64')]),
      keySource: counting,
      log: createLogger('silent', 'test'),
    });
  });
  after(async () => {
    await queue?.close();
    conn?.disconnect();
    await redis?.destroy();
  });

  /** A BullMQ job as the worker receives it on its `started`-th start. */
  const jobFor = (data: GenerateData, started: number) => {
    const job = new Job<GenerateData, GenerateResult>(queue, 'generate', data);
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

  it('issues on the first start, and a re-run returns the stored certificate without generating a key', async () => {
    const data = await reserved('proc01');

    const first = await processGenerate(jobFor(data, 1));
    assert.equal(first.status, 'created');
    assert.equal(taken, 1);
    const pem = pemOf(first);
    const x = new X509Certificate(pem);
    assert.ok(x.verify(x.publicKey));

    const rerun = await processGenerate(jobFor(data, 2));
    assert.equal(rerun.status, 'exists');
    assert.equal(taken, 1, 'a re-run of a stored job generates no key');
    assert.equal(pemOf(rerun), pem);
  });

  it('a duplicate first start still stores nothing twice: the create refuses, the stored record is answered', async () => {
    const data = await reserved('proc02');
    const a = await processGenerate(jobFor(data, 1));
    const b = await processGenerate(jobFor(data, 1));
    assert.equal(a.status, 'created');
    assert.equal(b.status, 'exists');
    assert.equal(pemOf(b), pemOf(a));
    assert.deepEqual(await store.count(TENANT), { existing: 2, pending: 0 });
  });

  it('BullMQ hands a job to its first run as attemptsStarted 1 (what the processor counts on)', async () => {
    const data = await reserved('proc03');
    const seen: number[] = [];
    const connection = duplicateRedis(conn, 'cc-processor-test-worker');
    const worker = new Worker<GenerateData, GenerateResult>(
      QUEUE_NAME,
      (job) => (seen.push(job.attemptsStarted), processGenerate(job)),
      { connection, prefix: keys.queuePrefix },
    );
    try {
      const before = taken;
      const jobId = generateJobId(data);
      const finished = new Promise<GenerateResult>((resolve, reject) => {
        worker.on('completed', (j, r) => j.id === jobId && resolve(r));
        worker.on('failed', (j, err) => j?.id === jobId && reject(err));
      });
      await queue.add('generate', data, { jobId });
      assert.equal((await finished).status, 'created');
      assert.deepEqual(seen, [1]);
      assert.equal(taken, before + 1);
    } finally {
      await worker.close();
      connection.disconnect();
    }
  });
});
