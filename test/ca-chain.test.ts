import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { ConfigError } from '../shared/config.js';
import { certificateAuthorityFrom } from '../shared/certificate-authority.js';
import { nginxMissing, startNginx, type TestNginx } from '../devtools/nginx.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { intermediateCa, rsaCa, serverCertificate } from '../devtools/tls.js';
import { useService } from './helpers/fixture.js';

const T = { accountId: '000000000000', region: 'us-east-1' };
const root = rsaCa({ cn: 'Chain Test Root CA' });
const intermediate = intermediateCa(root, 'Chain Test Intermediate CA');
const files = { certFile: 'chain.pem', keyFile: 'intermediate.key' };

describe('CA_CERT_FILE with an intermediate followed by its issuers', () => {
  test('the chain is the intermediate (the self-signed root is left to the backend)', () => {
    const ca = certificateAuthorityFrom(`${intermediate.cert}${root.cert}`, intermediate.key, files);
    assert.equal(ca.chainPem.length, 1);
    assert.equal(
      new X509Certificate(ca.chainPem[0]!).subject,
      new X509Certificate(intermediate.cert).subject,
    );
    assert.deepEqual(certificateAuthorityFrom(root.cert, root.key, files).chainPem, []);
  });

  test('issuers out of order are refused, naming the file and what to do', () => {
    assert.throws(
      () =>
        certificateAuthorityFrom(
          `${intermediate.cert}${rsaCa({ cn: 'Unrelated' }).cert}`,
          intermediate.key,
          files,
        ),
      (err: Error) =>
        err instanceof ConfigError &&
        /CA_CERT_FILE chain\.pem: certificate 2 .* did not issue certificate 1/.test(err.message),
    );
  });

  describe('issued records carry the intermediate; nginx trusting only the root accepts them through the gateway', () => {
    const fx = useService({
      ca: certificateAuthorityFrom(`${intermediate.cert}${root.cert}`, intermediate.key, files),
    });
    const serverCert = serverCertificate();
    let nginx: TestNginx | undefined;
    let gateway: Gateway | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'ca-chain-'));
    after(async () => {
      await gateway?.close();
      await nginx?.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    before(async () => {
      if (!nginxMissing()) {
        nginx = await startNginx({
          server: serverCert,
          clientCa: root.cert,
          serverDirectives: 'ssl_verify_depth 2;',
        });
      }
    });

    test('the record is the certificate then the intermediate; openssl verifies it against the root alone', async () => {
      const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
      assert.equal(res.status, 201);
      const pem = ((await res.json()) as { pemEncodedCertificate: string }).pemEncodedCertificate;
      const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      assert.equal(blocks.length, 2);
      assert.doesNotMatch(pem, /[^\r]\n/, 'CRLF line ends throughout, as AWS');
      assert.equal(new X509Certificate(blocks[1]!).subject, new X509Certificate(intermediate.cert).subject);
      writeFileSync(join(dir, 'root.pem'), root.cert);
      writeFileSync(join(dir, 'leaf.pem'), blocks[0]!);
      writeFileSync(join(dir, 'untrusted.pem'), blocks[1]!);
      const v = spawnSync(
        'openssl',
        [
          'verify',
          '-CAfile',
          join(dir, 'root.pem'),
          '-untrusted',
          join(dir, 'untrusted.pem'),
          join(dir, 'leaf.pem'),
        ],
        { encoding: 'utf8' },
      );
      assert.equal(v.status, 0, `${v.stdout}${v.stderr}`);
    });

    test(
      'through the gateway, nginx (ssl_client_certificate = the root only) answers 200',
      { skip: nginxMissing() },
      async () => {
        const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
        const c = (await res.json()) as { clientCertificateId: string; pemEncodedCertificate: string };
        gateway = await createGateway({
          store: fx.svc.store,
          vault: fx.svc.vault,
          ...T,
          clientCertificateId: c.clientCertificateId,
          target: new URL(`https://127.0.0.1:${nginx!.port}`),
          targetCa: serverCert.cert,
          log: fx.svc.log,
        });
        const url = await gateway.listen(0, '127.0.0.1');
        const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = request(`${url}/`, (r) => {
            let body = '';
            r.setEncoding('utf8');
            r.on('data', (d: string) => (body += d));
            r.on('end', () => resolve({ status: r.statusCode!, body }));
          });
          req.on('error', reject);
          req.end();
        });
        assert.equal(answer.status, 200, nginx!.errorLog());
        assert.equal(
          answer.body,
          `serial=${new X509Certificate(c.pemEncodedCertificate).serialNumber} verify=SUCCESS uri=/\n`,
        );
      },
    );
  });
});
