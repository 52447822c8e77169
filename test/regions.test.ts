import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GetClientCertificatesCommand, type APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { ConfigError, loadConfig } from '../shared/config.js';
import { isAwsRegion } from '../shared/regions.js';
import { awsClient } from '../devtools/aws-client.js';
import { useService } from './helpers/fixture.js';
import { rejectsWith } from './helpers/aws-errors.js';
import { signedFetch } from '../devtools/signed-fetch.js';

/** AWS's answer to a scope naming a region that does not exist (docs/aws-behaviour.md, "Regions"). */
const invalidRegion = (region: string) => `Credential should be scoped to a valid region, not '${region}'. `;

async function expectError(res: Response, status: number, type: string, message: string) {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get('x-amzn-errortype'), type);
  assert.equal((JSON.parse(text) as { message: string }).message, message);
}

describe('regions', () => {
  it('exist when the AWS SDK partition data lists them, in every partition', () => {
    for (const r of [
      'us-east-1',
      'eu-central-2',
      'ap-southeast-7',
      'cn-north-1',
      'us-gov-west-1',
      'us-isob-east-1',
    ]) {
      assert.ok(isAwsRegion(r), r);
    }
    // Names of the right shape that are no region, the partitions' global aliases, and junk.
    for (const r of [
      'zz-fake-9',
      'us-east-99',
      'eu-west-9',
      'aws-global',
      'aws-cn-global',
      '',
      'US-EAST-1',
      'moon',
    ]) {
      assert.equal(isAwsRegion(r), false, r);
    }
  });

  it('ALLOWED_REGIONS narrows them, and a region in it that does not exist fails at start', () => {
    assert.equal(loadConfig({}).allowedRegions, undefined);
    assert.deepEqual(
      [...loadConfig({ ALLOWED_REGIONS: ' eu-west-1, us-east-1 ' }).allowedRegions!],
      ['eu-west-1', 'us-east-1'],
    );
    assert.throws(
      () => loadConfig({ ALLOWED_REGIONS: 'us-east-1,zz-fake-9,eu-west-9' }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /ALLOWED_REGIONS names regions that do not exist: "zz-fake-9", "eu-west-9"/.test(err.message),
    );
    assert.throws(
      () => loadConfig({ ALLOWED_REGIONS: ' , ' }),
      /ALLOWED_REGIONS must name at least one region/,
    );
  });

  describe('a request scoped to a region that does not exist', () => {
    const fx = useService({ workers: 0 });
    let fake: APIGatewayClient;
    before(() => {
      fake = awsClient(fx.svc.api.url, { region: 'zz-fake-9' });
    });
    after(() => fake.destroy());

    it('is a 403 InvalidSignatureException with AWS wording, answered before any Redis call', async () => {
      // With Redis stopped, anything that asks Redis answers 503: a 403 proves nothing asked it.
      await fx.redis.stop();
      try {
        for (const region of ['zz-fake-9', 'us-east-99', 'aws-global']) {
          const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { region });
          await expectError(res, 403, 'InvalidSignatureException', invalidRegion(region));
        }
        await rejectsWith(
          fake.send(new GetClientCertificatesCommand({})),
          403,
          'InvalidSignatureException',
          invalidRegion('zz-fake-9'),
        );
        // The same request in a real region does reach Redis.
        const real = await signedFetch(fx.svc.api.url, '/clientcertificates', { region: 'eu-west-1' });
        assert.equal(real.status, 503, await real.text());
      } finally {
        await fx.redis.start();
      }
    });
  });

  describe('with ALLOWED_REGIONS=eu-west-1', () => {
    const fx = useService({ workers: 0, api: { allowedRegions: new Set(['eu-west-1']) } });

    it('accepts eu-west-1 and refuses every other region, real or not', async () => {
      const ok = await signedFetch(fx.svc.api.url, '/clientcertificates', { region: 'eu-west-1' });
      assert.equal(ok.status, 200, await ok.text());
      for (const region of ['us-east-1', 'zz-fake-9']) {
        const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { region });
        await expectError(res, 403, 'InvalidSignatureException', invalidRegion(region));
      }
    });
  });
});
