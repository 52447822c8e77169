import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { useService } from './helpers/fixture.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { wantsHal } from '../api/representation.js';

const HAL = 'application/hal+json';
const CURIES = {
  href: 'https://docs.aws.amazon.com/apigateway/latest/developerguide/restapi-clientcertificate-{rel}.html',
  name: 'clientcertificate',
  templated: true,
};
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

describe('HAL rendering with Accept: application/hal+json (real Redis, worker, signed HTTP)', () => {
  const fx = useService({ workers: 1 });
  /** The plain JSON record of a certificate made for these tests. */
  let plain: Record<string, unknown>;
  let id: string;

  before(async () => {
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates', {
      method: 'POST',
      body: JSON.stringify({ description: 'my-second-client-cert', tags: { team: 'payments' } }),
    });
    assert.equal(res.status, 201);
    plain = (await res.json()) as Record<string, unknown>;
    id = plain.clientCertificateId as string;
  });

  const links = (i: string) => ({
    self: { href: `/clientcertificates/${i}` },
    'clientcertificate:delete': { href: `/clientcertificates/${i}` },
    'clientcertificate:update': { href: `/clientcertificates/${i}` },
  });
  const iso = (s: unknown) => new Date((s as number) * 1000).toISOString().replace('.000Z', 'Z');

  it('GetClientCertificate answers the record with _links and ISO-8601 dates, as in the sample', async () => {
    const res = await signedFetch(fx.svc.api.url, `/clientcertificates/${id}`, { headers: { accept: HAL } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^application\/hal\+json/);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(body, {
      _links: { curies: CURIES, ...links(id) },
      clientCertificateId: id,
      createdDate: iso(plain.createdDate),
      description: 'my-second-client-cert',
      expirationDate: iso(plain.expirationDate),
      pemEncodedCertificate: plain.pemEncodedCertificate,
      tags: { team: 'payments' },
    });
    assert.match(body.createdDate as string, ISO);
  });

  it('GenerateClientCertificate answers 201 in HAL when asked', async () => {
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates', {
      method: 'POST',
      headers: { accept: HAL },
      body: '{"description":"hal"}',
    });
    assert.equal(res.status, 201);
    const body = (await res.json()) as Record<string, unknown>;
    const newId = body.clientCertificateId as string;
    assert.deepEqual(body._links, { curies: CURIES, ...links(newId) });
    assert.match(body.createdDate as string, ISO);
    assert.match(body.expirationDate as string, ISO);
    const del = await signedFetch(fx.svc.api.url, `/clientcertificates/${newId}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
  });

  it('UpdateClientCertificate answers in HAL when asked', async () => {
    const res = await signedFetch(fx.svc.api.url, `/clientcertificates/${id}`, {
      method: 'PATCH',
      headers: { accept: HAL },
      body: JSON.stringify({
        patchOperations: [{ op: 'replace', path: '/description', value: 'my-second-client-cert' }],
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(body._links, { curies: CURIES, ...links(id) });
    assert.equal(body.description, 'my-second-client-cert');
  });

  it('GetClientCertificates embeds the records under _embedded.item, links them, and carries position', async () => {
    const second = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
    const otherId = ((await second.json()) as { clientCertificateId: string }).clientCertificateId;
    const [firstId, lastId] = [id, otherId].sort() as [string, string];

    const res = await signedFetch(fx.svc.api.url, '/clientcertificates?limit=1', {
      headers: { accept: HAL },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^application\/hal\+json/);
    const page = (await res.json()) as {
      _links: Record<string, unknown>;
      _embedded: { item: Record<string, unknown>[] };
      position?: string;
    };
    assert.ok(page.position);
    assert.deepEqual(page._links, {
      curies: CURIES,
      self: { href: '/clientcertificates' },
      item: [{ href: `/clientcertificates/${firstId}` }],
      'clientcertificate:by-id': { href: '/clientcertificates/{clientcertificate_id}', templated: true },
      'clientcertificate:generate': { href: '/clientcertificates' },
      next: { href: `/clientcertificates?limit=1&position=${page.position}` },
    });
    assert.equal(page._embedded.item.length, 1);
    const embedded = page._embedded.item[0]!;
    assert.deepEqual(embedded._links, links(firstId), 'embedded records share the container curies');
    assert.match(embedded.createdDate as string, ISO);

    // Following `next` as given walks pages of the size asked for.
    const rest = await signedFetch(fx.svc.api.url, (page._links.next as { href: string }).href, {
      headers: { accept: HAL },
    });
    const last = (await rest.json()) as {
      _embedded: { item: { clientCertificateId: string }[] };
      position?: string;
    };
    assert.deepEqual(
      last._embedded.item.map((c) => c.clientCertificateId),
      [lastId],
    );
    assert.equal(last.position, undefined);
  });

  it('without the Accept header answers plain JSON: epoch-second dates, no _links', async () => {
    const res = await signedFetch(fx.svc.api.url, `/clientcertificates/${id}`);
    assert.match(res.headers.get('content-type')!, /^application\/json/);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body._links, undefined);
    assert.equal(typeof body.createdDate, 'number');
    const list = (await (await signedFetch(fx.svc.api.url, '/clientcertificates')).json()) as Record<
      string,
      unknown
    >;
    assert.deepEqual(Object.keys(list), ['item']);
  });

  it('errors stay plain JSON in the AWS wire format even when HAL is asked for', async () => {
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates/zzzzzz', { headers: { accept: HAL } });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-amzn-errortype'), 'NotFoundException');
    // AWS's words: docs/aws-behaviour.md, "Errors".
    assert.deepEqual(await res.json(), { message: 'Invalid Client Certificate identifier specified' });
  });

  it('negotiates by q and order', () => {
    assert.equal(wantsHal(undefined), false);
    assert.equal(wantsHal('application/json'), false);
    assert.equal(wantsHal('application/hal+json'), true);
    assert.equal(wantsHal('application/hal+json, application/json'), true);
    assert.equal(wantsHal('application/json, application/hal+json'), false);
    assert.equal(wantsHal('application/json;q=0.5, application/hal+json'), true);
    assert.equal(wantsHal('application/hal+json;q=0'), false);
    assert.equal(wantsHal('*/*'), false);
  });
});
