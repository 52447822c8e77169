/**
 * The call sequences real tools make, replayed through the AWS SDK against the real service (API,
 * BullMQ, worker, Redis). They pass today; they stay as the contract with those tools. Expected AWS
 * answers cite docs/aws-behaviour.md by section.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as apigw from '@aws-sdk/client-api-gateway';
import {
  paginateGetClientCertificates,
  type APIGatewayClient,
  type GetClientCertificatesCommandInput,
} from '@aws-sdk/client-api-gateway';
import { newClientCertificateId } from '../shared/ids.js';
import type { Tenant } from '../shared/keys.js';
import { awsClient } from '../devtools/aws-client.js';
import { useService } from './helpers/fixture.js';
import { rejectsNotFound } from './helpers/aws-errors.js';

/** docs/aws-behaviour.md, "Errors": the 404 for an id that names no certificate. */
/** docs/aws-behaviour.md, "ARN": region, no account. */
const arnOf = (region: string, id: string) => `arn:aws:apigateway:${region}::/clientcertificates/${id}`;

describe('real tools against the real service, through the AWS SDK', () => {
  const fx = useService({ workers: 1 });
  let us: APIGatewayClient;
  before(() => {
    us = awsClient(fx.svc.api.url, { region: 'us-east-1' });
  });
  after(() => us.destroy());

  it("Terraform's aws_api_gateway_client_certificate: create, read, update, tag, import, destroy", async () => {
    // Create: Generate with the resource's tags (Terraform's generated tests use empty-string values),
    // then an immediate Get (Read) that must already see the record.
    const tags = { Name: 'tf-acc-test', empty: '', Environment: 'test' };
    const created = await us.send(
      new apigw.GenerateClientCertificateCommand({ description: 'tf create', tags }),
    );
    assert.equal(created.$metadata.httpStatusCode, 201);
    const id = created.clientCertificateId!;
    const read = await us.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id }));
    assert.equal(read.description, 'tf create');
    assert.deepEqual(read.tags, tags);
    assert.equal(read.pemEncodedCertificate, created.pemEncodedCertificate);
    assert.ok(read.createdDate instanceof Date && read.expirationDate instanceof Date);

    // Update of description: one replace of /description, then Read.
    const updated = await us.send(
      new apigw.UpdateClientCertificateCommand({
        clientCertificateId: id,
        patchOperations: [{ op: 'replace', path: '/description', value: 'tf update' }],
      }),
    );
    assert.equal(updated.$metadata.httpStatusCode, 200);
    assert.equal(updated.description, 'tf update');

    // Update of tags (updateTags): UntagResource of removed keys, then TagResource of new and changed ones.
    const arn = arnOf('us-east-1', id);
    await us.send(new apigw.UntagResourceCommand({ resourceArn: arn, tagKeys: ['empty', 'Environment'] }));
    await us.send(
      new apigw.TagResourceCommand({ resourceArn: arn, tags: { Environment: 'prod', Owner: '' } }),
    );
    const afterTags = await us.send(new apigw.GetTagsCommand({ resourceArn: arn }));
    assert.deepEqual(afterTags.tags, { Name: 'tf-acc-test', Environment: 'prod', Owner: '' });

    // Older provider versions sent an Update with an empty patchOperations list: it succeeds, changes nothing.
    const noop = await us.send(
      new apigw.UpdateClientCertificateCommand({ clientCertificateId: id, patchOperations: [] }),
    );
    assert.equal(noop.$metadata.httpStatusCode, 200);
    assert.equal(noop.description, 'tf update');
    assert.deepEqual(noop.tags, afterTags.tags);

    // Import by id: `terraform import aws_api_gateway_client_certificate.x <id>` is a Read by id.
    const imported = await us.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id }));
    assert.equal(imported.clientCertificateId, id);
    assert.equal(imported.description, 'tf update');
    assert.deepEqual(imported.tags, afterTags.tags);

    // Destroy: Delete (202), then the provider's checks that it is gone: Delete and Get are 404s.
    const deleted = await us.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: id }));
    assert.equal(deleted.$metadata.httpStatusCode, 202);
    await rejectsNotFound(us.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: id })));
    await rejectsNotFound(us.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id })));
  });

  describe('listing every certificate of a region with more than one page', () => {
    const region = 'eu-west-2';
    const t: Tenant = { accountId: '000000000000', region };
    let eu: APIGatewayClient;
    const ids: string[] = [];

    before(async () => {
      eu = awsClient(fx.svc.api.url, { region });
      // Two real certificates, and 228 more written with the store: paging is what is under test, and
      // 230 RSA keys would cost a minute of CPU on a shared machine.
      for (let i = 0; i < 2; i++) {
        ids.push(
          (await eu.send(new apigw.GenerateClientCertificateCommand({ description: `real ${i}` })))
            .clientCertificateId!,
        );
      }
      const pem = (await eu.send(new apigw.GetClientCertificateCommand({ clientCertificateId: ids[0]! })))
        .pemEncodedCertificate!;
      const now = Math.floor(Date.now() / 1000);
      for (let i = 0; i < 228; i++) {
        const id = newClientCertificateId();
        assert.equal(await fx.svc.store.reserve(t, id, 60_000, 0), 'reserved');
        const c = {
          clientCertificateId: id,
          pemEncodedCertificate: pem,
          createdDate: now,
          expirationDate: now + 365 * 86400,
        };
        assert.equal(
          await fx.svc.store.createIfReserved(t, { ...c, tags: { n: String(i) }, encryptedKey: 'x' }),
          'created',
        );
        ids.push(id);
      }
    });
    after(() => eu.destroy());

    it('aws-nuke: pages of limit 100 while position is set (docs/aws-behaviour.md, "Paging")', async () => {
      // aws-nuke's APIGatewayClientCertificate lister: Limit 100; loop until Position is nil.
      const params: GetClientCertificatesCommandInput = { limit: 100 };
      const seen: string[] = [];
      const sizes: number[] = [];
      for (;;) {
        const out = await eu.send(new apigw.GetClientCertificatesCommand(params));
        sizes.push(out.items!.length);
        seen.push(...out.items!.map((c) => c.clientCertificateId!));
        if (out.position === undefined) break;
        params.position = out.position;
      }
      assert.deepEqual(sizes, [100, 100, 30]);
      assert.deepEqual([...seen].sort(), [...ids].sort(), 'every certificate once');
    });

    it('CloudQuery: the SDK paginator pages until position is absent', async () => {
      // CloudQuery's apigateway client_certificates table: NewGetClientCertificatesPaginator, while HasMorePages.
      const seen: string[] = [];
      let pages = 0;
      for await (const page of paginateGetClientCertificates({ client: eu }, {})) {
        pages += 1;
        seen.push(...(page.items ?? []).map((c) => c.clientCertificateId!));
      }
      assert.equal(pages, Math.ceil(230 / 25), 'the default page size is 25');
      assert.deepEqual([...seen].sort(), [...ids].sort(), 'every certificate once');
      // And with a page size of 500 (the maximum), one page without a position.
      const one = await eu.send(new apigw.GetClientCertificatesCommand({ limit: 500 }));
      assert.equal(one.items!.length, 230);
      assert.equal(one.position, undefined);
    });
  });
});
