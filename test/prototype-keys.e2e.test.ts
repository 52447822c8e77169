import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as apigw from '@aws-sdk/client-api-gateway';
import { type APIGatewayClient } from '@aws-sdk/client-api-gateway';
import { validateTags } from '../shared/validation.js';
import { awsClient } from '../devtools/aws-client.js';
import { useService } from './helpers/fixture.js';
import { signedFetch } from '../devtools/signed-fetch.js';

/** Keys that name members of Object.prototype: `obj[key] = v` on a `{}` loses or corrupts them. */
const ODD = { __proto__: 'p', constructor: 'c', toString: 't', hasOwnProperty: 'h' };
/** The same map as JSON text: an object literal's `__proto__:` would set the prototype, not a key. */
const ODD_JSON = '{"__proto__":"p","constructor":"c","toString":"t","hasOwnProperty":"h"}';
const oddTags = (): Record<string, string> => JSON.parse(ODD_JSON) as Record<string, string>;
const arn = (id: string) => `arn:aws:apigateway:us-east-1::/clientcertificates/${id}`;

/** Own enumerable entries, sorted: what a JSON answer carries, whatever the object's prototype. */
const entries = (o: object | undefined) => Object.entries(o ?? {}).sort(([a], [b]) => a.localeCompare(b));

describe('tag keys named like Object.prototype members', () => {
  it('validateTags keeps them as own keys of a map with no prototype', () => {
    const tags = validateTags(oddTags());
    assert.equal(Object.getPrototypeOf(tags), null);
    assert.deepEqual(entries(tags), entries(oddTags()));
    assert.equal(ODD.constructor, 'c'); // the literal above is only documentation
  });

  describe('through the real service', () => {
    const fx = useService({ workers: 1 });
    let sdk: APIGatewayClient;
    before(() => {
      sdk = awsClient(fx.svc.api.url);
    });
    after(() => sdk.destroy());

    const raw = async (path: string, method = 'GET', body?: string) => {
      const res = await signedFetch(fx.svc.api.url, path, { method, body });
      const text = await res.text();
      return {
        status: res.status,
        body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
      };
    };

    it('round-trip through Generate, Get, GetClientCertificates and GetTags (raw HTTP)', async () => {
      const made = await raw('/clientcertificates', 'POST', `{"tags":${ODD_JSON}}`);
      assert.equal(made.status, 201);
      assert.deepEqual(entries(made.body!.tags as object), entries(oddTags()));
      const id = made.body!.clientCertificateId as string;

      const got = await raw(`/clientcertificates/${id}`);
      assert.equal(got.status, 200);
      assert.deepEqual(entries(got.body!.tags as object), entries(oddTags()), 'GetClientCertificate');

      const list = await raw('/clientcertificates?limit=500');
      const item = (list.body!.item as { clientCertificateId: string; tags: object }[]).find(
        (c) => c.clientCertificateId === id,
      );
      assert.deepEqual(entries(item?.tags), entries(oddTags()), 'GetClientCertificates');

      const tags = await raw(`/tags/${encodeURIComponent(arn(id))}`);
      assert.equal(tags.status, 200);
      assert.deepEqual(entries(tags.body!.tags as object), entries(oddTags()), 'GetTags');
    });

    it('TagResource adds and UntagResource removes them (raw HTTP)', async () => {
      const made = await raw('/clientcertificates', 'POST', '{"tags":{"team":"a"}}');
      const id = made.body!.clientCertificateId as string;
      const path = `/tags/${encodeURIComponent(arn(id))}`;
      assert.equal((await raw(path, 'PUT', `{"tags":${ODD_JSON}}`)).status, 204);
      assert.deepEqual(entries((await raw(path)).body!.tags as object), entries({ ...oddTags(), team: 'a' }));
      const untag = await raw(`${path}?tagKeys=__proto__&tagKeys=constructor`, 'DELETE');
      assert.equal(untag.status, 204);
      assert.deepEqual(
        entries((await raw(path)).body!.tags as object),
        entries({ hasOwnProperty: 'h', team: 'a', toString: 't' }),
      );
    });

    it('round-trip through every tag-bearing operation of the AWS SDK', async () => {
      const made = await sdk.send(new apigw.GenerateClientCertificateCommand({ tags: oddTags() }));
      assert.deepEqual(entries(made.tags), entries(oddTags()), 'Generate');
      const id = made.clientCertificateId!;
      const got = await sdk.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id }));
      assert.deepEqual(entries(got.tags), entries(oddTags()), 'GetClientCertificate');
      const list = await sdk.send(new apigw.GetClientCertificatesCommand({ limit: 500 }));
      const item = list.items?.find((c) => c.clientCertificateId === id);
      assert.deepEqual(entries(item?.tags), entries(oddTags()), 'GetClientCertificates');
      assert.deepEqual(
        entries((await sdk.send(new apigw.GetTagsCommand({ resourceArn: arn(id) }))).tags),
        entries(oddTags()),
        'GetTags',
      );

      await sdk.send(
        new apigw.UntagResourceCommand({ resourceArn: arn(id), tagKeys: ['__proto__', 'toString'] }),
      );
      assert.deepEqual(
        entries((await sdk.send(new apigw.GetTagsCommand({ resourceArn: arn(id) }))).tags),
        entries({ constructor: 'c', hasOwnProperty: 'h' }),
      );
      const back = JSON.parse('{"__proto__":"p2","toString":"t2"}') as Record<string, string>;
      await sdk.send(new apigw.TagResourceCommand({ resourceArn: arn(id), tags: back }));
      assert.deepEqual(
        entries((await sdk.send(new apigw.GetTagsCommand({ resourceArn: arn(id) }))).tags),
        entries(
          JSON.parse('{"__proto__":"p2","constructor":"c","hasOwnProperty":"h","toString":"t2"}') as object,
        ),
      );
    });
  });
});
