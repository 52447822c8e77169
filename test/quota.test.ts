import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DeleteClientCertificateCommand,
  GenerateClientCertificateCommand,
} from '@aws-sdk/client-api-gateway';
import { directKeySource, type KeySource } from '../worker/key-source.js';
import { awsClient } from '../devtools/aws-client.js';
import { useRedis } from './helpers/fixture.js';
import { startService } from '../devtools/service.js';

const ACCOUNT = '111111111111';
const tenant = { accountId: ACCOUNT, region: 'us-east-1' };

type SdkError = Error & { $metadata?: { httpStatusCode?: number } };

describe('client certificate quota', () => {
  const fx = useRedis();

  it('8 concurrent Generates with 5 slots left over two API processes give exactly 5 certificates and 3 LimitExceededException', async () => {
    const svc = await startService(fx.redis.url, {
      workers: 2,
      credentials: [
        {
          accessKeyId: 'quota',
          secretAccessKey: 'quota-secret',
          accountId: ACCOUNT,
          allow: ['apigateway:*'],
          clientCertificateLimit: 7,
        },
      ],
      clientCertificateLimit: 60, // the file's per-account override (7) must win
    });
    try {
      const second = await svc.addApi();
      const a = awsClient(svc.api.url, { accessKeyId: 'quota', secretAccessKey: 'quota-secret' });
      const b = awsClient(second.url, { accessKeyId: 'quota', secretAccessKey: 'quota-secret' });
      for (let i = 0; i < 2; i++)
        await a.send(new GenerateClientCertificateCommand({ description: `pre ${i}` }));

      const results = await Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 ? b : a).send(new GenerateClientCertificateCommand({ description: `burst ${i}` })),
        ),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(ok.length, 5, JSON.stringify(failed.map((f) => (f.reason as Error).name)));
      assert.equal(failed.length, 3);
      for (const f of failed) {
        const err = f.reason as SdkError;
        assert.equal(err.name, 'LimitExceededException');
        assert.equal(err.$metadata?.httpStatusCode, 429);
        assert.equal(
          err.message,
          'The maximum number of client certificates (7) for this account in us-east-1 has been reached. Delete unused client certificates and try again.',
        );
      }
      assert.deepEqual(await svc.redis.zcard(svc.keys.index(tenant)), 7);
      assert.deepEqual(await svc.redis.zcard(svc.keys.pending(tenant)), 0);
      // A delete frees a slot, for exactly one more certificate.
      const victim = (ok[0] as PromiseFulfilledResult<{ clientCertificateId?: string }>).value
        .clientCertificateId!;
      await b.send(new DeleteClientCertificateCommand({ clientCertificateId: victim }));
      const again = await a.send(new GenerateClientCertificateCommand({ description: 'after delete' }));
      assert.equal(again.description, 'after delete');
      await assert.rejects(b.send(new GenerateClientCertificateCommand({})), {
        name: 'LimitExceededException',
      });
      assert.equal(await svc.redis.zcard(svc.keys.index(tenant)), 7);
      // The quota is per account and region: another region of the same account still has room.
      const eu = awsClient(svc.api.url, {
        accessKeyId: 'quota',
        secretAccessKey: 'quota-secret',
        region: 'eu-west-1',
      });
      const out = await eu.send(new GenerateClientCertificateCommand({}));
      assert.ok(out.clientCertificateId);
    } finally {
      await svc.close();
    }
  });

  it('a failed generation does not keep its slot', async () => {
    const failing: KeySource = {
      take: () => Promise.reject(new Error('entropy source unplugged')),
      close: async () => {},
    };
    const svc = await startService(fx.redis.url, {
      workers: 0,
      credentials: [
        {
          accessKeyId: 'one',
          secretAccessKey: 'one-secret',
          accountId: ACCOUNT,
          allow: ['apigateway:*'],
          clientCertificateLimit: 1,
        },
      ],
    });
    try {
      const bad = svc.addWorker({ keySource: failing, concurrency: 1 });
      const client = awsClient(svc.api.url, { accessKeyId: 'one', secretAccessKey: 'one-secret' });
      await assert.rejects(client.send(new GenerateClientCertificateCommand({})), (err: SdkError) => {
        assert.equal(err.$metadata?.httpStatusCode, 500);
        return true;
      });
      assert.equal(await svc.redis.zcard(svc.keys.pending(tenant)), 0);
      await bad.close(1000);
      svc.addWorker({ keySource: directKeySource, concurrency: 1 });
      const out = await client.send(
        new GenerateClientCertificateCommand({ description: 'after the failure' }),
      );
      assert.equal(out.description, 'after the failure');
      await assert.rejects(client.send(new GenerateClientCertificateCommand({})), {
        name: 'LimitExceededException',
      });
    } finally {
      await svc.close();
    }
  });
});
