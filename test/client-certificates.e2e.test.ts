import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as apigw from '@aws-sdk/client-api-gateway';
import { type APIGatewayClient, type ClientCertificate } from '@aws-sdk/client-api-gateway';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { newClientCertificateId } from '../shared/ids.js';
import { useService } from './helpers/fixture.js';
import { rejectsNotFound, rejectsWith } from './helpers/aws-errors.js';
import { awsClient } from '../devtools/aws-client.js';
import { signedFetch } from '../devtools/signed-fetch.js';

const US = { accountId: '000000000000', region: 'us-east-1' };
// AWS's words: docs/aws-behaviour.md, "Errors".
const NOT_FOUND = 'Invalid Client Certificate identifier specified';
const arn = (id: string, region = 'us-east-1') => `arn:aws:apigateway:${region}::/clientcertificates/${id}`;
const strip = ({ $metadata: _m, ...rest }: { $metadata: unknown } & ClientCertificate) => rest;

describe('ClientCertificate family end to end through the AWS SDK (real Redis, BullMQ, worker)', () => {
  const fx = useService({ workers: 1 });
  let us: APIGatewayClient;
  let eu: APIGatewayClient;
  let store: ClientCertificateStore;
  /** An id that is well formed but names no certificate. */
  let unknownId: string;

  before(() => {
    us = awsClient(fx.svc.api.url, { region: 'us-east-1' });
    eu = awsClient(fx.svc.api.url, { region: 'eu-west-1' });
    store = new ClientCertificateStore(fx.svc.redis, fx.svc.keys);
    unknownId = newClientCertificateId();
  });
  after(() => {
    us.destroy();
    eu.destroy();
  });

  const generate = (input: { description?: string; tags?: Record<string, string> } = {}, client = us) =>
    client.send(new apigw.GenerateClientCertificateCommand(input));

  describe('GetClientCertificate', () => {
    it('answers 200 with the same record Generate answered', async () => {
      const made = await generate({ description: 'get-me', tags: { team: 'payments' } });
      const got = await us.send(
        new apigw.GetClientCertificateCommand({ clientCertificateId: made.clientCertificateId }),
      );
      assert.equal(got.$metadata.httpStatusCode, 200);
      assert.deepEqual(strip(got), strip(made));
      assert.ok(
        new X509Certificate(got.pemEncodedCertificate!).verify(
          new X509Certificate(got.pemEncodedCertificate!).publicKey,
        ),
      );
    });

    it('answers 404 NotFoundException for a well-formed id that names no certificate', async () => {
      await rejectsNotFound(
        us.send(new apigw.GetClientCertificateCommand({ clientCertificateId: unknownId })),
      );
    });

    for (const raw of ['..%2F', '..%2Fx', 'ABCDEF', 'abc12', 'abc1234', 'abc123%3Atags', '%ZZ', '%00abcde']) {
      it(`answers 404 NotFoundException, never a 5xx, for the ill-formed id ${raw} (GET, PATCH, DELETE)`, async () => {
        for (const method of ['GET', 'PATCH', 'DELETE']) {
          const res = await signedFetch(fx.svc.api.url, `/clientcertificates/${raw}`, {
            method,
            ...(method === 'PATCH' ? { body: '{"patchOperations":[]}' } : {}),
          });
          assert.equal(res.status, 404, `${method} ${raw}`);
          assert.equal(res.headers.get('x-amzn-errortype'), 'NotFoundException');
          assert.deepEqual(await res.json(), { message: NOT_FOUND });
        }
      });
    }
  });

  describe('GetClientCertificates', () => {
    it("lists the caller's certificates in id order with the fields of the record, and no position on the last page", async () => {
      const a = await generate({ description: 'list-a' });
      const b = await generate({ tags: { k: 'v' } });
      const out = await us.send(new apigw.GetClientCertificatesCommand({ limit: 500 }));
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.equal(out.position, undefined);
      const ids = out.items!.map((c) => c.clientCertificateId!);
      assert.deepEqual(ids, [...ids].sort());
      const listedA = out.items!.find((c) => c.clientCertificateId === a.clientCertificateId);
      const listedB = out.items!.find((c) => c.clientCertificateId === b.clientCertificateId);
      assert.deepEqual(listedA, strip(a));
      assert.deepEqual(listedB, strip(b));
    });

    it('pages 25 by default and hands out an opaque position when more follow', async () => {
      // Records written straight into the store of another region: listing does not care how they were made.
      const t = { accountId: US.accountId, region: 'ap-south-1' };
      const ids = new Set<string>();
      while (ids.size < 27) ids.add(newClientCertificateId());
      for (const id of ids) {
        assert.equal(await store.reserve(t, id, 60_000, 0), 'reserved');
        const r = await store.createIfReserved(t, {
          clientCertificateId: id,
          pemEncodedCertificate: `pem-${id}`,
          createdDate: 1_700_000_000,
          expirationDate: 1_731_536_000,
          tags: {},
          encryptedKey: 'sealed',
        });
        assert.equal(r, 'created');
      }
      const ap = awsClient(fx.svc.api.url, { region: 'ap-south-1' });
      try {
        const first = await ap.send(new apigw.GetClientCertificatesCommand({}));
        assert.equal(first.items!.length, 25);
        assert.ok(first.position);
        assert.ok(
          !first.position.includes(first.items![24]!.clientCertificateId!),
          'position is not the raw id',
        );
        const second = await ap.send(new apigw.GetClientCertificatesCommand({ position: first.position }));
        assert.equal(second.items!.length, 2);
        assert.equal(second.position, undefined);
        const all = [...first.items!, ...second.items!].map((c) => c.clientCertificateId!);
        assert.deepEqual(all, [...ids].sort());
      } finally {
        ap.destroy();
      }
    });

    for (const limit of [0, 501, -1]) {
      it(`rejects limit=${limit} with 400 BadRequestException`, async () => {
        await rejectsWith(
          us.send(new apigw.GetClientCertificatesCommand({ limit })),
          400,
          'BadRequestException',
          `Invalid limit "${limit}": limit must be a whole number from 1 to 500`,
        );
      });
    }

    for (const limit of ['abc', '1.5', '', '1e2', '0x10', '00000000001']) {
      it(`rejects limit=${JSON.stringify(limit)} with 400 BadRequestException`, async () => {
        const res = await signedFetch(
          fx.svc.api.url,
          `/clientcertificates?limit=${encodeURIComponent(limit)}`,
        );
        assert.equal(res.status, 400);
        assert.equal(res.headers.get('x-amzn-errortype'), 'BadRequestException');
        assert.deepEqual(await res.json(), {
          message: `Invalid limit ${JSON.stringify(limit)}: limit must be a whole number from 1 to 500`,
        });
      });
    }

    it('accepts limit=1 and limit=500', async () => {
      assert.equal((await us.send(new apigw.GetClientCertificatesCommand({ limit: 1 }))).items!.length, 1);
      assert.ok((await us.send(new apigw.GetClientCertificatesCommand({ limit: 500 }))).items!.length >= 2);
    });

    for (const position of ['garbage!', 'YWJjMTIzOnRhZ3M', 'QUJDREVG', 'YWJjMTIz=', '']) {
      it(`rejects the position token ${JSON.stringify(position)} it did not make with 400 BadRequestException`, async () => {
        await rejectsWith(
          us.send(new apigw.GetClientCertificatesCommand({ position })),
          400,
          'BadRequestException',
          'Invalid position: pass the position value of the previous GetClientCertificates answer unchanged',
        );
      });
    }
  });

  describe('UpdateClientCertificate', () => {
    it('replaces /description, answers the updated record, and Get agrees', async () => {
      const made = await generate({ description: 'before', tags: { keep: 'me' } });
      const id = made.clientCertificateId!;
      const out = await us.send(
        new apigw.UpdateClientCertificateCommand({
          clientCertificateId: id,
          patchOperations: [{ op: 'replace', path: '/description', value: 'after' }],
        }),
      );
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.deepEqual(strip(out), { ...strip(made), description: 'after' });
      const got = await us.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id }));
      assert.equal(got.description, 'after');
      assert.deepEqual(got.tags, { keep: 'me' });
    });

    it('removes the description when replace carries no value, and the last of several operations wins', async () => {
      const id = (await generate({ description: 'x' })).clientCertificateId!;
      const removed = await us.send(
        new apigw.UpdateClientCertificateCommand({
          clientCertificateId: id,
          patchOperations: [{ op: 'replace', path: '/description' }],
        }),
      );
      assert.equal(removed.description, undefined);
      const twice = await us.send(
        new apigw.UpdateClientCertificateCommand({
          clientCertificateId: id,
          patchOperations: [
            { op: 'replace', path: '/description', value: 'one' },
            { op: 'replace', path: '/description', value: 'two' },
          ],
        }),
      );
      assert.equal(twice.description, 'two');
    });

    describe("rejects with AWS's wording and changes nothing", () => {
      let id: string;
      before(async () => {
        id = (await generate({ description: 'untouched' })).clientCertificateId!;
      });
      const cases: [string, { op: string; path: string; value?: string }[], number, string, string][] = [
        [
          'a path other than /description',
          [{ op: 'replace', path: '/pemEncodedCertificate', value: 'x' }],
          400,
          'BadRequestException',
          // AWS's words: docs/aws-behaviour.md, "Update (patch)".
          "Invalid patch path  '/pemEncodedCertificate' specified for op 'replace'. Must be one of: [/description]",
        ],
        [
          'a valid first operation followed by a bad path',
          [
            { op: 'replace', path: '/description', value: 'changed' },
            { op: 'replace', path: '/tags/a', value: 'x' },
          ],
          400,
          'BadRequestException',
          // AWS's words: docs/aws-behaviour.md, "Update (patch)".
          "Invalid patch path  '/tags/a' specified for op 'replace'. Must be one of: [/description]",
        ],
        [
          'an op of the enum other than replace',
          [{ op: 'add', path: '/description', value: 'x' }],
          400,
          'BadRequestException',
          // AWS's words: docs/aws-behaviour.md, "Update (patch)".
          "Invalid patch path  '/description' specified for op 'add'. Please choose supported operations",
        ],
        [
          'an op outside the enum',
          [
            { op: 'replace', path: '/description', value: 'changed' },
            { op: 'frobnicate', path: '/description', value: 'x' },
          ],
          400,
          'BadRequestException',
          // AWS's words: docs/aws-behaviour.md, "Update (patch)".
          "1 validation error detected: Value 'frobnicate' at 'updateClientCertificateInput.patchOperations.2.member.op' failed to satisfy constraint: Member must satisfy enum value set: [add, remove, move, test, replace, copy]",
        ],
        [
          'a description longer than 1024 characters',
          [{ op: 'replace', path: '/description', value: 'd'.repeat(1025) }],
          400,
          'BadRequestException',
          'patchOperations[0].value must be at most 1024 characters, got 1025',
        ],
      ];
      for (const [what, patchOperations, status, name, message] of cases) {
        it(what, async () => {
          await rejectsWith(
            us.send(
              new apigw.UpdateClientCertificateCommand({
                clientCertificateId: id,
                patchOperations: patchOperations as never,
              }),
            ),
            status,
            name,
            message,
          );
          const got = await us.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id }));
          assert.equal(got.description, 'untouched');
        });
      }
    });

    it('answers 404 NotFoundException for an unknown id', async () => {
      await rejectsNotFound(
        us.send(
          new apigw.UpdateClientCertificateCommand({
            clientCertificateId: unknownId,
            patchOperations: [{ op: 'replace', path: '/description', value: 'x' }],
          }),
        ),
      );
      assert.equal(
        await fx.svc.redis.exists(fx.svc.keys.certificate(US, unknownId)),
        0,
        'no record conjured up',
      );
    });
  });

  describe('DeleteClientCertificate', () => {
    it('answers 202 with an empty body; record, encrypted key, index entry and tags are gone; a second delete is 404', async () => {
      const id = (await generate({ description: 'doomed', tags: { a: 'b' } })).clientCertificateId!;
      assert.ok(await store.getEncryptedKey(US, id), 'the sealed key is stored');
      assert.equal(await fx.svc.redis.exists(fx.svc.keys.tags(US, id)), 1);

      const res = await signedFetch(fx.svc.api.url, `/clientcertificates/${id}`, { method: 'DELETE' });
      assert.equal(res.status, 202);
      assert.equal(await res.text(), '');

      assert.equal(await fx.svc.redis.exists(fx.svc.keys.certificate(US, id), fx.svc.keys.tags(US, id)), 0);
      assert.equal(await fx.svc.redis.zscore(fx.svc.keys.index(US), id), null);
      await rejectsNotFound(us.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id })));
      await rejectsNotFound(us.send(new apigw.GetTagsCommand({ resourceArn: arn(id) })));
      const list = await us.send(new apigw.GetClientCertificatesCommand({ limit: 500 }));
      assert.ok(!list.items!.some((c) => c.clientCertificateId === id));
      await rejectsNotFound(us.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: id })));
    });

    it('answers 202 through the SDK', async () => {
      const id = (await generate()).clientCertificateId!;
      const out = await us.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: id }));
      assert.equal(out.$metadata.httpStatusCode, 202);
    });
  });

  describe('tags by ARN', () => {
    let id: string;
    before(async () => {
      id = (await generate({ tags: { team: 'payments', env: 'dev' } })).clientCertificateId!;
    });

    it('GetTags shows the tags given at Generate', async () => {
      const out = await us.send(new apigw.GetTagsCommand({ resourceArn: arn(id) }));
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.deepEqual(out.tags, { team: 'payments', env: 'dev' });
    });

    it('TagResource merges (204); GetTags, Get and List all agree', async () => {
      const out = await us.send(
        new apigw.TagResourceCommand({ resourceArn: arn(id), tags: { env: 'prod', owner: 'ops' } }),
      );
      assert.equal(out.$metadata.httpStatusCode, 204);
      const expected = { team: 'payments', env: 'prod', owner: 'ops' };
      assert.deepEqual((await us.send(new apigw.GetTagsCommand({ resourceArn: arn(id) }))).tags, expected);
      assert.deepEqual(
        (await us.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id }))).tags,
        expected,
      );
      const listed = (await us.send(new apigw.GetClientCertificatesCommand({ limit: 500 }))).items!.find(
        (c) => c.clientCertificateId === id,
      );
      assert.deepEqual(listed?.tags, expected);
    });

    it('UntagResource removes the named keys (204) and ignores keys that are not there', async () => {
      const out = await us.send(
        new apigw.UntagResourceCommand({ resourceArn: arn(id), tagKeys: ['owner', 'nope'] }),
      );
      assert.equal(out.$metadata.httpStatusCode, 204);
      assert.deepEqual((await us.send(new apigw.GetTagsCommand({ resourceArn: arn(id) }))).tags, {
        team: 'payments',
        env: 'prod',
      });
    });

    it('accepts the ARN unencoded in the path as well', async () => {
      const res = await signedFetch(fx.svc.api.url, `/tags/${arn(id)}`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { tags: { team: 'payments', env: 'prod' } });
    });

    it('rejects going past 50 tags after the merge with 400 and keeps the tags as they were', async () => {
      const fresh = (await generate({ tags: { a: '1' } })).clientCertificateId!;
      const fortyNine = Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`k${i}`, 'v']));
      await us.send(new apigw.TagResourceCommand({ resourceArn: arn(fresh), tags: fortyNine })); // 50: allowed
      assert.equal(
        Object.keys((await us.send(new apigw.GetTagsCommand({ resourceArn: arn(fresh) }))).tags!).length,
        50,
      );
      await us.send(new apigw.TagResourceCommand({ resourceArn: arn(fresh), tags: { a: 'overwritten' } })); // still 50
      await rejectsWith(
        us.send(new apigw.TagResourceCommand({ resourceArn: arn(fresh), tags: { one: 'more' } })),
        400,
        'BadRequestException',
        'Too many tags: a client certificate can have at most 50 tags; remove some with UntagResource first',
      );
      const tags = (await us.send(new apigw.GetTagsCommand({ resourceArn: arn(fresh) }))).tags!;
      assert.equal(Object.keys(tags).length, 50);
      assert.equal(tags.a, 'overwritten');
      assert.equal(tags.one, undefined);
    });

    it('validates tags as Generate does', async () => {
      await rejectsWith(
        us.send(new apigw.TagResourceCommand({ resourceArn: arn(id), tags: { 'aws:x': 'y' } })),
        400,
        'BadRequestException',
        `Invalid tag key "aws:x" in tags: a tag key must not start with 'aws:'`,
      );
      await rejectsWith(
        us.send(new apigw.UntagResourceCommand({ resourceArn: arn(id), tagKeys: ['k'.repeat(129)] })),
        400,
        'BadRequestException',
        `Invalid tag key "${'k'.repeat(40)}..." in tagKeys: a tag key must be at most 128 characters, got 129`,
      );
    });

    it('UntagResource without tagKeys is a 400', async () => {
      const res = await signedFetch(fx.svc.api.url, `/tags/${encodeURIComponent(arn(id))}`, {
        method: 'DELETE',
      });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('x-amzn-errortype'), 'BadRequestException');
      assert.deepEqual(await res.json(), {
        message: 'tagKeys is required: name at least one tag key to remove (?tagKeys=key)',
      });
    });

    it('TagResource without tags is a 400', async () => {
      const res = await signedFetch(fx.svc.api.url, `/tags/${encodeURIComponent(arn(id))}`, {
        method: 'PUT',
        body: '{}',
      });
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { message: 'tags is required: a map of tag keys to values' });
    });

    const expected = 'expected arn:aws:apigateway:us-east-1::/clientcertificates/{clientcertificate_id}';
    const badArns: [string, (id: string) => string, string][] = [
      ['a malformed ARN', () => 'not-an-arn', 'it is not an ARN'],
      [
        'an ARN with too few fields',
        (i) => `arn:aws:apigateway:us-east-1:/clientcertificates/${i}`,
        'it is not an ARN',
      ],
      ["another service's ARN", () => 'arn:aws:s3:::my-bucket', 'it does not name an API Gateway resource'],
      [
        'another API Gateway resource',
        () => 'arn:aws:apigateway:us-east-1::/restapis/abc123',
        'it does not name a client certificate',
      ],
      [
        'another region',
        (i) => arn(i, 'eu-west-1'),
        "its region 'eu-west-1' is not the request's region 'us-east-1'",
      ],
      ['an empty region', (i) => arn(i, ''), "its region (empty) is not the request's region 'us-east-1'"],
      [
        'an ARN in another partition',
        (i) => `arn:aws-cn:apigateway:us-east-1::/clientcertificates/${i}`,
        "its partition 'aws-cn' is not the request's partition 'aws'",
      ],
      [
        "an ARN with an account (found by the conformance fuzzer: it was taken as the caller's own certificate)",
        (i) => `arn:aws:apigateway:us-east-1:123456789012:/clientcertificates/${i}`,
        'it names an account, and API Gateway ARNs have none',
      ],
    ];
    for (const [what, make, why] of badArns) {
      it(`rejects ${what} with 400 BadRequestException on GetTags, TagResource and UntagResource`, async () => {
        const message = `Invalid ARN specified in the request: ${why}; ${expected}`;
        const resourceArn = make(id);
        await rejectsWith(
          us.send(new apigw.GetTagsCommand({ resourceArn })),
          400,
          'BadRequestException',
          message,
        );
        await rejectsWith(
          us.send(new apigw.TagResourceCommand({ resourceArn, tags: { a: 'b' } })),
          400,
          'BadRequestException',
          message,
        );
        await rejectsWith(
          us.send(new apigw.UntagResourceCommand({ resourceArn, tagKeys: ['team'] })),
          400,
          'BadRequestException',
          message,
        );
      });
    }

    it('answers 404 NotFoundException for the ARN of a missing certificate, and for an ill-formed id in the ARN', async () => {
      for (const resourceArn of [arn(unknownId), arn('..'), arn('ABCDEF')]) {
        await rejectsNotFound(us.send(new apigw.GetTagsCommand({ resourceArn })));
        await rejectsNotFound(us.send(new apigw.TagResourceCommand({ resourceArn, tags: { a: 'b' } })));
        await rejectsNotFound(us.send(new apigw.UntagResourceCommand({ resourceArn, tagKeys: ['a'] })));
      }
      assert.equal(await fx.svc.redis.exists(fx.svc.keys.tags(US, unknownId)), 0, 'no orphan tag hash');
    });
  });

  describe('regions', () => {
    it('a certificate made in eu-west-1 is invisible from us-east-1 and visible from eu-west-1', async () => {
      const made = await generate({ description: 'eu', tags: { r: 'eu' } }, eu);
      const id = made.clientCertificateId!;
      await rejectsNotFound(us.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id })));
      await rejectsNotFound(
        us.send(
          new apigw.UpdateClientCertificateCommand({
            clientCertificateId: id,
            patchOperations: [{ op: 'replace', path: '/description', value: 'hijack' }],
          }),
        ),
      );
      await rejectsNotFound(us.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: id })));
      const usList = await us.send(new apigw.GetClientCertificatesCommand({ limit: 500 }));
      assert.ok(!usList.items!.some((c) => c.clientCertificateId === id));

      const got = await eu.send(new apigw.GetClientCertificateCommand({ clientCertificateId: id }));
      assert.deepEqual(strip(got), strip(made));
      const euList = await eu.send(new apigw.GetClientCertificatesCommand({}));
      assert.deepEqual(
        euList.items!.map((c) => c.clientCertificateId),
        [id],
      );
      assert.deepEqual(
        (await eu.send(new apigw.GetTagsCommand({ resourceArn: arn(id, 'eu-west-1') }))).tags,
        {
          r: 'eu',
        },
      );
      const del = await eu.send(new apigw.DeleteClientCertificateCommand({ clientCertificateId: id }));
      assert.equal(del.$metadata.httpStatusCode, 202);
    });

    // docs/aws-behaviour.md "ARNs": an ARN's partition is its region's (aws-cn for China, aws-us-gov for GovCloud).
    for (const [region, partition] of [
      ['cn-north-1', 'aws-cn'],
      ['us-gov-west-1', 'aws-us-gov'],
    ] as const) {
      it(`a certificate in ${region} is addressed by an arn:${partition} ARN, and an arn:aws one is a 400`, async () => {
        const client = awsClient(fx.svc.api.url, { region });
        try {
          const id = (await generate({ tags: { p: partition } }, client)).clientCertificateId!;
          const resourceArn = `arn:${partition}:apigateway:${region}::/clientcertificates/${id}`;
          await client.send(new apigw.TagResourceCommand({ resourceArn, tags: { q: 'r' } }));
          assert.deepEqual((await client.send(new apigw.GetTagsCommand({ resourceArn }))).tags, {
            p: partition,
            q: 'r',
          });
          await client.send(new apigw.UntagResourceCommand({ resourceArn, tagKeys: ['q'] }));
          assert.deepEqual((await client.send(new apigw.GetTagsCommand({ resourceArn }))).tags, {
            p: partition,
          });

          const message =
            `Invalid ARN specified in the request: its partition 'aws' is not the request's partition '${partition}'; ` +
            `expected arn:${partition}:apigateway:${region}::/clientcertificates/{clientcertificate_id}`;
          const awsArn = arn(id, region);
          await rejectsWith(
            client.send(new apigw.GetTagsCommand({ resourceArn: awsArn })),
            400,
            'BadRequestException',
            message,
          );
          await rejectsWith(
            client.send(new apigw.TagResourceCommand({ resourceArn: awsArn, tags: { x: 'y' } })),
            400,
            'BadRequestException',
            message,
          );
          // A partition ARN signed for a region of another partition is refused the same way.
          await rejectsWith(
            us.send(new apigw.GetTagsCommand({ resourceArn })),
            400,
            'BadRequestException',
            `Invalid ARN specified in the request: its partition '${partition}' is not the request's partition 'aws'; ${'expected arn:aws:apigateway:us-east-1::/clientcertificates/{clientcertificate_id}'}`,
          );
          assert.deepEqual((await client.send(new apigw.GetTagsCommand({ resourceArn }))).tags, {
            p: partition,
          });
        } finally {
          client.destroy();
        }
      });
    }
  });
});
