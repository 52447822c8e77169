import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { clientTlsOptions } from '../shared/client-tls.js';
import { certificateAuthorityFrom, type CertificateAuthority } from '../shared/certificate-authority.js';
import { useService, type ServiceFixture } from './helpers/fixture.js';
import { nginxMissing, startNginx, type TestNginx } from '../devtools/nginx.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { ecCa, opensslAsync, rsaCa, serverCertificate, type Pem } from '../devtools/tls.js';

const T = { accountId: '000000000000', region: 'us-east-1' };

async function generate(fx: ServiceFixture): Promise<{ id: string; pem: string }> {
  const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
  assert.equal(res.status, 201);
  const j = (await res.json()) as { clientCertificateId: string; pemEncodedCertificate: string };
  return { id: j.clientCertificateId, pem: j.pemEncodedCertificate };
}

async function remove(fx: ServiceFixture, id: string): Promise<void> {
  const res = await signedFetch(fx.svc.api.url, `/clientcertificates/${id}`, { method: 'DELETE' });
  assert.equal(res.status, 202);
}

/** A folder for openssl's input files, removed after the describe. */
function useFolder(): { path: (name: string, content?: string | Buffer) => string } {
  const dir = mkdtempSync(join(tmpdir(), 'ca-revocation-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return {
    path(name, content) {
      const p = join(dir, name);
      if (content !== undefined) writeFileSync(p, content);
      return p;
    },
  };
}

function openssl(args: string[]): { code: number; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** A CA for one describe whose certificates name the describe's API as their CRL and OCSP address. */
function caFor(pem: Pem): CertificateAuthority {
  return certificateAuthorityFrom(pem.cert, pem.key, { certFile: 'ca.pem', keyFile: 'ca.key' });
}

for (const [kind, makeCa] of [
  ['RSA', () => rsaCa({ cn: 'Revocation Test RSA CA' })],
  ['EC P-256', () => ecCa('Revocation Test EC CA')],
] as const) {
  describe(`CA mode (${kind}): a delete revokes, in the CRL and over OCSP`, () => {
    const caPem = makeCa();
    const ca = caFor(caPem);
    const fx = useService({ ca, workers: 1 });
    const files = useFolder();
    before(() => {
      // The certificates name this API; the same object is the workers' CA, so later ones carry it.
      ca.publicUrl = fx.svc.api.url;
    });

    test('the subject names account, region and id; the ARN is a URI SAN; CRL DP and AIA name the API', async () => {
      const c = await generate(fx);
      const x = new X509Certificate(c.pem);
      assert.equal(x.subject, `C=US\nL=Seattle\nO=${T.accountId}\nOU=${T.region}\nCN=${c.id}`);
      assert.equal(x.subjectAltName, `URI:arn:aws:apigateway:${T.region}::/clientcertificates/${c.id}`);
      assert.equal(
        x.infoAccess?.trimEnd(),
        `OCSP - URI:${fx.svc.api.url}/ca/ocsp\nCA Issuers - URI:${fx.svc.api.url}/ca/cert`,
      );
      const text = openssl([
        'x509',
        '-noout',
        '-ext',
        'crlDistributionPoints',
        '-in',
        files.path('c.pem', c.pem),
      ]);
      assert.match(text.out, new RegExp(`URI:${fx.svc.api.url}/ca/crl`));
      assert.equal(x.checkIssued(new X509Certificate(caPem.cert)), true);
    });

    test('the CRL verifies with openssl crl -verify, lists a deleted certificate and not a live one', async () => {
      const live = await generate(fx);
      const gone = await generate(fx);
      await remove(fx, gone.id);
      const res = await fetch(`${fx.svc.api.url}/ca/crl`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/pkix-crl');
      const der = Buffer.from(await res.arrayBuffer());
      const caFile = files.path('ca.pem', caPem.cert);
      const crlFile = files.path('crl.der', der);
      const verify = openssl([
        'crl',
        '-inform',
        'DER',
        '-in',
        crlFile,
        '-CAfile',
        caFile,
        '-noout',
        '-verify',
      ]);
      assert.equal(verify.code, 0, verify.out);
      assert.match(verify.out, /verify OK/);
      const text = openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']).out;
      assert.match(text, /Version 2/);
      assert.match(text, /X509v3 CRL Number:/);
      assert.match(text, /X509v3 Authority Key Identifier:/);
      assert.match(text, /Next Update:/);
      const serial = (pem: string) => new X509Certificate(pem).serialNumber.replace(/^0+/, '');
      assert.match(text, new RegExp(`Serial Number: 0*${serial(gone.pem)}`, 'i'));
      assert.doesNotMatch(text, new RegExp(`Serial Number: 0*${serial(live.pem)}`, 'i'));
      assert.match(text, /Cessation Of Operation/);

      // The PEM form is the same CRL; openssl verify with -crl_check refuses the deleted one only.
      const pemRes = await fetch(`${fx.svc.api.url}/ca/crl.pem`);
      const crlPem = await pemRes.text();
      assert.match(crlPem, /^-----BEGIN X509 CRL-----\n/);
      const crlPemFile = files.path('crl.pem', crlPem);
      const check = (pem: string, name: string) =>
        openssl(['verify', '-crl_check', '-CRLfile', crlPemFile, '-CAfile', caFile, files.path(name, pem)]);
      assert.equal(check(live.pem, 'live.pem').code, 0);
      const refused = check(gone.pem, 'gone.pem');
      assert.notEqual(refused.code, 0);
      assert.match(refused.out, /certificate revoked/);
    });

    test('openssl ocsp: good for a live certificate, revoked after its delete, unknown for a serial never issued', async () => {
      const c = await generate(fx);
      const caFile = files.path('ca.pem', caPem.cert);
      const certFile = files.path(`${c.id}.pem`, c.pem);
      const ask = (...target: string[]) =>
        opensslAsync([
          'ocsp',
          '-issuer',
          caFile,
          ...target,
          '-url',
          `${fx.svc.api.url}/ca/ocsp`,
          '-CAfile',
          caFile,
        ]);
      const good = await ask('-cert', certFile);
      assert.match(good.out, /Response verify OK/, good.out);
      assert.match(good.out, new RegExp(`${certFile}: good`));
      assert.doesNotMatch(good.out, /nonce/i); // openssl warns when the nonce it sent is missing or differs

      await remove(fx, c.id);
      const revoked = await ask('-cert', certFile);
      assert.match(revoked.out, /Response verify OK/, revoked.out);
      assert.match(revoked.out, new RegExp(`${certFile}: revoked`));
      assert.match(revoked.out, /Reason: cessationOfOperation/);

      const unknown = await ask('-serial', '0x1234567890abcdef');
      assert.match(unknown.out, /Response verify OK/, unknown.out);
      assert.match(unknown.out, /: unknown/);
    });

    test('OCSP over GET (base64 in the path, as nginx asks) answers the same, and garbage is malformedRequest', async () => {
      const c = await generate(fx);
      const caFile = files.path('ca.pem', caPem.cert);
      const certFile = files.path(`${c.id}.pem`, c.pem);
      const reqFile = files.path('req.der');
      openssl(['ocsp', '-issuer', caFile, '-cert', certFile, '-no_nonce', '-reqout', reqFile]);
      const b64 = execFileSync('openssl', ['base64', '-A', '-in', reqFile], { encoding: 'utf8' }).trim();
      const res = await fetch(`${fx.svc.api.url}/ca/ocsp/${encodeURIComponent(b64)}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/ocsp-response');
      const respFile = files.path('resp.der', Buffer.from(await res.arrayBuffer()));
      const out = openssl([
        'ocsp',
        '-respin',
        respFile,
        '-issuer',
        caFile,
        '-cert',
        certFile,
        '-CAfile',
        caFile,
      ]).out;
      assert.match(out, /Response verify OK/, out);
      assert.match(out, /: good/);

      const bad = await fetch(`${fx.svc.api.url}/ca/ocsp`, {
        method: 'POST',
        headers: { 'content-type': 'application/ocsp-request' },
        body: 'not DER',
      });
      assert.equal(bad.status, 200);
      // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED malformedRequest(1) }
      assert.deepEqual([...new Uint8Array(await bad.arrayBuffer())], [0x30, 0x03, 0x0a, 0x01, 0x01]);
    });

    test('/metrics counts revoked serials, the CRL age and OCSP answers by status', async () => {
      // Earlier tests of this describe deleted three certificates and asked OCSP for good, revoked and unknown.
      const text = await (await fetch(`${fx.svc.api.url}/metrics`)).text();
      const value = (line: RegExp) => Number(line.exec(text)?.[1] ?? NaN);
      assert.equal(value(/^ca_revoked_certificates (\S+)$/m), 2);
      // Every certificate this describe issued, deleted or not, until its notAfter.
      const indexed = await fx.svc.redis.hlen(fx.svc.keys.caSerials);
      assert.ok(indexed >= 5, `indexed ${indexed}`);
      assert.equal(value(/^ca_serial_index_entries (\S+)$/m), indexed);
      const age = value(/^ca_crl_age_seconds (\S+)$/m);
      assert.ok(age >= 0 && age < 60, `CRL age ${age}`);
      for (const status of ['good', 'revoked', 'unknown']) {
        assert.ok(
          value(new RegExp(`^ca_ocsp_responses_total\\{status="${status}"\\} (\\S+)$`, 'm')) >= 1,
          status,
        );
      }
    });
  });
}

const skip = nginxMissing();

/** A TLS request straight to nginx presenting `tls` (a key read behind the API, as the gateway does), on a new connection. */
async function presentTo(
  tls: { key: string; cert: string },
  nginx: TestNginx,
  serverCa: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: nginx.port,
        path: '/',
        ca: serverCa,
        key: tls.key,
        cert: tls.cert,
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('CA mode against real nginx: ssl_crl and ssl_ocsp refuse a deleted certificate', { skip }, () => {
  const caPem = ecCa('Revocation nginx CA');
  const ca = caFor(caPem);
  const fx = useService({ ca, workers: 1, api: { ocspValiditySeconds: 2 } });
  const serverCert = serverCertificate();
  const nginxes: TestNginx[] = [];
  before(() => {
    ca.publicUrl = fx.svc.api.url;
  });
  after(async () => {
    for (const n of nginxes) await n.stop();
  });
  const tlsOf = (id: string) => clientTlsOptions({ store: fx.svc.store, vault: fx.svc.vault, ...T, id });

  test('ssl_crl: accepted while live; refused after the delete once nginx reloads the CRL', async () => {
    const c = await generate(fx);
    const tls = await tlsOf(c.id);
    const crl = async () => (await fetch(`${fx.svc.api.url}/ca/crl.pem`)).text();
    const nginx = await startNginx({
      server: serverCert,
      clientCa: caPem.cert,
      files: { 'crl.pem': await crl() },
      serverDirectives: 'ssl_crl {dir}/crl.pem;',
    });
    nginxes.push(nginx);
    const ok = await presentTo(tls, nginx, serverCert.cert);
    assert.equal(ok.status, 200, nginx.errorLog());
    assert.match(ok.body, /verify=SUCCESS/);

    await remove(fx, c.id);
    const started = Date.now();
    const serial = new X509Certificate(c.pem).serialNumber.replace(/^0+/, '');
    const crlFile = join(nginx.dir, 'crl.pem');
    // Within 15 s the published CRL lists it (in practice the first fetch after the delete does).
    for (;;) {
      writeFileSync(crlFile, await crl());
      const text = openssl(['crl', '-noout', '-text', '-in', crlFile]).out;
      if (new RegExp(`Serial Number: 0*${serial}`, 'i').test(text) || Date.now() - started > 15_000) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(Date.now() - started < 15_000, 'the CRL did not list the deleted certificate within 15 s');
    await nginx.reload();
    const refused = await presentTo(tls, nginx, serverCert.cert);
    assert.equal(refused.status, 400, nginx.errorLog());
    assert.match(nginx.errorLog(), /certificate revoked/);
  });

  test('ssl_ocsp on: accepted while live; refused within 15 s plus the OCSP answer lifetime after the delete', async () => {
    const c = await generate(fx);
    const tls = await tlsOf(c.id);
    const nginx = await startNginx({
      server: serverCert,
      clientCa: caPem.cert,
      httpDirectives: 'ssl_ocsp_cache shared:ocsp:1m;',
      serverDirectives: 'ssl_ocsp on; ssl_session_cache off; ssl_session_tickets off;',
    });
    nginxes.push(nginx);
    const ok = await presentTo(tls, nginx, serverCert.cert);
    assert.equal(ok.status, 200, nginx.errorLog());
    assert.match(ok.body, /verify=SUCCESS/);

    await remove(fx, c.id);
    const deletedAt = Date.now();
    let res = await presentTo(tls, nginx, serverCert.cert);
    while (res.status === 200 && Date.now() - deletedAt < 17_000) {
      await new Promise((r) => setTimeout(r, 250));
      res = await presentTo(tls, nginx, serverCert.cert);
    }
    assert.equal(res.status, 400, `still accepted ${Date.now() - deletedAt} ms after the delete`);
    assert.match(nginx.errorLog(), /certificate revoked/);
  });
});

describe(
  'CA mode against real nginx: a backend admits one account and refuses another with the same CA',
  { skip },
  () => {
    const caPem = ecCa('Tenants nginx CA');
    const ca = caFor(caPem);
    const other = { accessKeyId: 'OTHERKEY', secretAccessKey: 'other-secret', accountId: '111111111111' };
    const fx = useService({
      ca,
      workers: 1,
      credentials: [
        { accessKeyId: 'test', secretAccessKey: 'test', accountId: T.accountId, allow: ['apigateway:*'] },
        { ...other, allow: ['apigateway:*'] },
      ],
    });
    const serverCert = serverCertificate();
    let nginx: TestNginx | undefined;
    after(async () => nginx?.stop());

    test("nginx maps the subject's O to the account: 000000000000 admitted, 111111111111 refused", async () => {
      nginx = await startNginx({
        server: serverCert,
        clientCa: caPem.cert,
        httpDirectives: `map $ssl_client_s_dn $tenant_ok { "~(^|,)O=${T.accountId}(,|$)" 1; default 0; }`,
        location: `if ($tenant_ok = 0) { return 403 "account refused: $ssl_client_s_dn\\n"; }
      default_type text/plain;
      return 200 "admitted: $ssl_client_s_dn\\n";`,
      });
      const mine = await generate(fx);
      const res = await signedFetch(fx.svc.api.url, '/clientcertificates', {
        method: 'POST',
        body: '{}',
        accessKeyId: other.accessKeyId,
        secretAccessKey: other.secretAccessKey,
      });
      assert.equal(res.status, 201);
      const theirs = (await res.json()) as { clientCertificateId: string };
      const a = await presentTo(
        await clientTlsOptions({ store: fx.svc.store, vault: fx.svc.vault, ...T, id: mine.id }),
        nginx,
        serverCert.cert,
      );
      assert.equal(a.status, 200);
      assert.match(a.body, new RegExp(`O=${T.accountId}`));
      const b = await presentTo(
        await clientTlsOptions({
          store: fx.svc.store,
          vault: fx.svc.vault,
          accountId: other.accountId,
          region: T.region,
          id: theirs.clientCertificateId,
        }),
        nginx,
        serverCert.cert,
      );
      assert.equal(b.status, 403);
      assert.match(b.body, /O=111111111111/);
    });
  },
);
