import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as apigw from '@aws-sdk/client-api-gateway';
import { type APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { clientCertificateArn } from '../shared/client-certificate.js';
import { awsClient } from '../devtools/aws-client.js';
import { useService } from './helpers/fixture.js';

const ALICE = {
  accessKeyId: 'alice',
  secretAccessKey: 'alice-secret',
  accountId: '111111111111',
  allow: ['apigateway:*'],
};
const BOB = {
  accessKeyId: 'bob',
  secretAccessKey: 'bob-secret',
  accountId: '222222222222',
  allow: ['apigateway:*'],
};
/** A second credential of Alice's account: same account, same certificates. */
const ALICE_CI = {
  accessKeyId: 'alice-ci',
  secretAccessKey: 'ci-secret',
  accountId: '111111111111',
  allow: ['apigateway:GET'],
};

type SdkError = Error & { $metadata?: { httpStatusCode?: number } };

describe('tenants: an account never sees another account’s certificates', () => {
  const fx = useService({ credentials: [ALICE, BOB, ALICE_CI] });
  let alice: APIGatewayClient;
  let bob: APIGatewayClient;
  let aliceEu: APIGatewayClient;
  let id: string;
  let notFoundMessage: string;

  before(async () => {
    alice = awsClient(fx.svc.api.url, ALICE);
    bob = awsClient(fx.svc.api.url, BOB);
    aliceEu = awsClient(fx.svc.api.url, { ...ALICE, region: 'eu-west-1' });
    const out = await alice.send(
      new apigw.GenerateClientCertificateCommand({ description: 'alice only', tags: { owner: 'alice' } }),
    );
    id = out.clientCertificateId!;
    // What a certificate that does not exist at all looks like, to compare with.
    try {
      await alice.send(new apigw.GetClientCertificateCommand({ clientCertificateId: 'zzzzzz' }));
      assert.fail('zzzzzz exists');
    } catch (err) {
      notFoundMessage = (err as Error).message;
    }
  });

  const arn = (region = 'us-east-1') => clientCertificateArn(region, id);

  /** Every operation on Alice's certificate, as another caller would send it. */
  const operations = (region = 'us-east-1'): [string, (c: APIGatewayClient) => Promise<unknown>][] => [
    [
      'GetClientCertificate',
      (c) => c.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id })),
    ],
    [
      'UpdateClientCertificate',
      (c) =>
        c.send(
          new apigw.UpdateClientCertificateCommand({
            clientCertificateId: id,
            patchOperations: [{ op: 'replace', path: '/description', value: 'taken over' }],
          }),
        ),
    ],
    [
      'DeleteClientCertificate',
      (c) => c.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: id })),
    ],
    [
      'TagResource',
      (c) => c.send(new apigw.TagResourceCommand({ resourceArn: arn(region), tags: { owner: 'mallory' } })),
    ],
    [
      'UntagResource',
      (c) => c.send(new apigw.UntagResourceCommand({ resourceArn: arn(region), tagKeys: ['owner'] })),
    ],
    ['GetTags', (c) => c.send(new apigw.GetTagsCommand({ resourceArn: arn(region) }))],
  ];

  for (const [name, call] of operations()) {
    it(`${name} from another account is 404 NotFoundException, as if the certificate did not exist`, async () => {
      await assert.rejects(call(bob), (err: SdkError) => {
        assert.equal(err.name, 'NotFoundException');
        assert.equal(err.$metadata?.httpStatusCode, 404);
        assert.equal(err.message, notFoundMessage);
        return true;
      });
    });
  }

  for (const [name, call] of operations('eu-west-1')) {
    it(`${name} from the same account in another region is 404 NotFoundException`, async () => {
      await assert.rejects(call(aliceEu), { name: 'NotFoundException' });
    });
  }

  it('GetClientCertificates of another account, or another region, lists nothing of it', async () => {
    const theirs = await bob.send(new apigw.GetClientCertificatesCommand({}));
    assert.deepEqual(theirs.items ?? [], []);
    const eu = await aliceEu.send(new apigw.GetClientCertificatesCommand({}));
    assert.deepEqual(eu.items ?? [], []);
    const ours = await alice.send(new apigw.GetClientCertificatesCommand({}));
    assert.deepEqual(
      ours.items?.map((c) => c.clientCertificateId),
      [id],
    );
  });

  it('after all those attempts the owner’s certificate is unchanged', async () => {
    const c = await alice.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id }));
    assert.equal(c.description, 'alice only');
    assert.deepEqual(c.tags, { owner: 'alice' });
    const tags = await alice.send(new apigw.GetTagsCommand({ resourceArn: arn() }));
    assert.deepEqual(tags.tags, { owner: 'alice' });
  });

  it('another credential of the same account sees the certificate (the account, not the key, owns it)', async () => {
    const ci = awsClient(fx.svc.api.url, ALICE_CI);
    const c = await ci.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id }));
    assert.equal(c.clientCertificateId, id);
    // ... within what its allow list grants.
    await assert.rejects(
      ci.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: id })),
      (err: SdkError) => {
        assert.equal(err.name, 'UnauthorizedException');
        assert.equal(err.$metadata?.httpStatusCode, 401);
        return true;
      },
    );
  });

  it('the owner can still delete it', async () => {
    await alice.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: id }));
    await assert.rejects(alice.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id })), {
      name: 'NotFoundException',
    });
  });
});
