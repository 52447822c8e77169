import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { forwardTarget, resolveDotSegments } from '../gateway/request-target.js';
import { nginxMissing, startNginx, type TestNginx } from '../devtools/nginx.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { serverCertificate } from '../devtools/tls.js';
import { useService } from './helpers/fixture.js';

const skip = nginxMissing();

/** Sends `text` as is on a new connection; resolves with everything the gateway sent back until it closed or 3 s. */
function exchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(text));
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      data += d;
      // One whole answer is enough: nginx's echo is short and has a Content-Length.
      const m = /content-length: (\d+)\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/i.exec(data);
      if (m && Buffer.byteLength(m[2]!) >= Number(m[1])) socket.destroy();
    });
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
    setTimeout(() => socket.destroy(), 3000).unref();
  });
}

describe('what the gateway forwards (nginx behind it echoes what it received)', { skip }, () => {
  const fx = useService();
  const serverCert = serverCertificate();
  let nginx: TestNginx;
  let gw: Gateway;
  let port: number;
  let host: string;

  before(async () => {
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
    assert.equal(res.status, 201);
    const cert = (await res.json()) as { clientCertificateId: string; pemEncodedCertificate: string };
    nginx = await startNginx({
      server: serverCert,
      clientCa: cert.pemEncodedCertificate,
      location: `default_type text/plain;
      return 200 "uri=$request_uri host=$http_host xff=$http_x_forwarded_for serial=$http_x_client_cert_serial xfcc=$http_x_forwarded_client_cert fwd=$http_forwarded\\n";`,
    });
    gw = await createGateway({
      store: fx.svc.store,
      vault: fx.svc.vault,
      accountId: '000000000000',
      region: 'us-east-1',
      clientCertificateId: cert.clientCertificateId,
      target: new URL(`https://127.0.0.1:${nginx.port}/api`),
      targetCa: serverCert.cert,
      log: fx.svc.log,
    });
    const url = new URL(await gw.listen(0, '127.0.0.1'));
    port = Number(url.port);
    host = url.host;
  });
  after(async () => {
    await gw?.close();
    await nginx?.stop();
  });

  const get = (target: string, headers = `host: ${host}\r\n`) =>
    exchange(port, `GET ${target} HTTP/1.1\r\n${headers}connection: close\r\n\r\n`);

  it('forwards an origin-form request under the base path, dot-segments inside it resolved', async () => {
    assert.match(await get('/orders?id=7'), /^HTTP\/1\.1 200[\s\S]*uri=\/api\/orders\?id=7 /);
    assert.match(await get('/a/../orders'), /^HTTP\/1\.1 200[\s\S]*uri=\/api\/orders /);
  });

  it('refuses dot-segments that leave the base path, as sent or percent-encoded', async () => {
    for (const target of [
      '/../admin/secret',
      '/a/../../admin',
      '/%2e%2e/admin',
      '/..%2fadmin',
      '/..\\admin',
    ]) {
      const res = await get(target);
      assert.match(res, /^HTTP\/1\.1 400 /, target);
      assert.doesNotMatch(res, /uri=/, target);
    }
  });

  it('refuses absolute-form and CONNECT', async () => {
    const abs = await get('https://other.internal/private');
    assert.match(abs, /^HTTP\/1\.1 400 /);
    assert.doesNotMatch(abs, /uri=/);
    const tunnel = await exchange(
      port,
      `CONNECT other.internal:443 HTTP/1.1\r\nhost: other.internal:443\r\n\r\n`,
    );
    assert.match(tunnel, /^HTTP\/1\.1 405 /);
  });

  it('answers only the Host values it serves (default: its listen address)', async () => {
    assert.match(await get('/x', `host: ${host}\r\n`), /^HTTP\/1\.1 200 /);
    const rebound = await get('/x', 'host: attacker.example:80\r\n');
    assert.match(rebound, /^HTTP\/1\.1 421 /);
    assert.doesNotMatch(rebound, /uri=/);
  });

  it('strips identity headers the client set and sets its own', async () => {
    const res = await get(
      '/x',
      `host: ${host}\r\nx-forwarded-for: 10.9.9.9\r\nx-client-cert-serial: 01\r\nx-forwarded-client-cert: Hash=forged\r\nforwarded: for=10.9.9.9\r\n`,
    );
    assert.match(res, /^HTTP\/1\.1 200 /);
    assert.match(res, / xff=127\.0\.0\.1 serial= xfcc= fwd=\n/);
  });

  it('resolves dot-segments as RFC 3986 does', () => {
    assert.equal(resolveDotSegments('/a/b/../c/./d'), '/a/c/d');
    assert.equal(resolveDotSegments('/a/..'), '/');
    assert.equal(resolveDotSegments('/..'), undefined);
    assert.equal(forwardTarget('GET', '/x/%2E%2E/y?q=/../', '/base'), '/base/y?q=/../');
  });
});
