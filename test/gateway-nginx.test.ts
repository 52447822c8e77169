import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { certificateAuthorityFrom } from '../shared/certificate-authority.js';
import { useService, type ServiceFixture } from './helpers/fixture.js';
import { nginxMissing, startNginx, type TestNginx } from '../devtools/nginx.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { ecCa, serverCertificate } from '../devtools/tls.js';

const skip = nginxMissing();
const T = { accountId: '000000000000', region: 'us-east-1' };

async function generate(fx: ServiceFixture): Promise<{ id: string; pem: string }> {
  const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
  assert.equal(res.status, 201);
  const j = (await res.json()) as { clientCertificateId: string; pemEncodedCertificate: string };
  return { id: j.clientCertificateId, pem: j.pemEncodedCertificate };
}

function get(url: string, path = '/'): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Gateways and nginx for one describe, stopped after it. */
function useGateways(fx: ServiceFixture, serverCert: { key: string; cert: string }) {
  const gateways: Gateway[] = [];
  const ctx: { nginx?: TestNginx } = {};
  after(async () => {
    for (const g of gateways) await g.close();
    await ctx.nginx?.stop();
  });
  const start = async (id: string, refreshIntervalMs = 5000) => {
    const gw = await createGateway({
      store: fx.svc.store,
      vault: fx.svc.vault,
      ...T,
      clientCertificateId: id,
      target: new URL(`https://127.0.0.1:${ctx.nginx!.port}`),
      targetCa: serverCert.cert,
      log: fx.svc.log,
      refreshIntervalMs,
    });
    gateways.push(gw);
    return { gw, url: await gw.listen(0, '127.0.0.1') };
  };
  return { ctx, start };
}

describe('the mTLS gateway in front of nginx (ssl_verify_client on)', { skip }, () => {
  const fx = useService();
  const serverCert = serverCertificate();
  const { ctx, start } = useGateways(fx, serverCert);
  let a: { id: string; pem: string };
  let b: { id: string; pem: string };

  before(async () => {
    a = await generate(fx);
    b = await generate(fx);
    // nginx trusts certificate A only, as a backend that pins one API Gateway client certificate.
    ctx.nginx = await startNginx({ server: serverCert, clientCa: a.pem });
  });

  test('through the gateway presenting A, nginx answers 200 and saw A', async () => {
    const { url } = await start(a.id);
    const res = await get(url, '/orders?id=7');
    assert.equal(res.status, 200);
    assert.equal(
      res.body,
      `serial=${new X509Certificate(a.pem).serialNumber} verify=SUCCESS uri=/orders?id=7\n`,
    );
  });

  test("presenting B, nginx's 400 comes through unchanged", async () => {
    const { url } = await start(b.id);
    const res = await get(url);
    assert.equal(res.status, 400);
    assert.equal(res.type, 'text/html');
    assert.match(res.body, /<title>400 The SSL certificate error<\/title>/);
    assert.match(ctx.nginx!.errorLog(), /client SSL certificate verify error/);
  });

  test('after A is deleted, the gateway answers 502 naming A within 15 s', async () => {
    const { gw, url } = await start(a.id);
    assert.equal((await get(url)).status, 200);
    const del = await signedFetch(fx.svc.api.url, `/clientcertificates/${a.id}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    const t0 = Date.now();
    let res = await get(url);
    while (res.status === 200 && Date.now() - t0 < 15_000) {
      await new Promise((r) => setTimeout(r, 250));
      res = await get(url);
    }
    assert.ok(Date.now() - t0 <= 15_000, `502 after ${Date.now() - t0} ms`);
    assert.equal(gw.deleted, true);
    assert.equal(res.status, 502);
    assert.equal(res.type, 'application/json');
    assert.deepEqual(JSON.parse(res.body), {
      message: `Client certificate ${a.id} was deleted: the gateway no longer presents it`,
    });
  });
});

describe(
  'CA mode: nginx trusting only the CA accepts a CA-issued certificate through the gateway',
  { skip },
  () => {
    const caPem = ecCa('Gateway Test CA');
    const fx = useService({
      ca: certificateAuthorityFrom(caPem.cert, caPem.key, { certFile: 'ca.pem', keyFile: 'ca.key' }),
    });
    const serverCert = serverCertificate();
    const { ctx, start } = useGateways(fx, serverCert);

    before(async () => {
      ctx.nginx = await startNginx({ server: serverCert, clientCa: caPem.cert });
    });

    test('every certificate the CA issued is accepted, none is pinned', async () => {
      for (const c of [await generate(fx), await generate(fx)]) {
        const { url } = await start(c.id);
        const res = await get(url);
        assert.equal(res.status, 200);
        assert.equal(res.body, `serial=${new X509Certificate(c.pem).serialNumber} verify=SUCCESS uri=/\n`);
      }
    });
  },
);
