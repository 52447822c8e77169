import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { request, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { APIGatewayClient, GenerateClientCertificateCommand } from '@aws-sdk/client-api-gateway';
import { CERT_PROFILES } from '../shared/config.js';
import { clientTlsOptions } from '../shared/client-tls.js';
import { KeyVault } from '../shared/crypto/key-vault.js';
import { ClientCertificateStore } from '../shared/client-certificate-store.js';
import { useService } from './helpers/fixture.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { serverCertificate } from '../devtools/tls.js';

interface Outcome {
  status?: number;
  body?: string;
  error?: NodeJS.ErrnoException;
}

function get(port: number, ca: string, client?: { key: string; cert: string }): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/', method: 'GET', ca, ...client, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode, body }));
        res.on('error', (error) => resolve({ error }));
      },
    );
    req.on('error', (error) => resolve({ error }));
    req.end();
  });
}

for (const profile of CERT_PROFILES) {
  describe(`certificates of the ${profile} profile in mutual TLS`, () => {
    const fx = useService({ certProfile: profile });
    let sdk: APIGatewayClient;
    const serverCert = serverCertificate();

    before(() => {
      sdk = new APIGatewayClient({
        endpoint: fx.svc.api.url,
        region: 'us-east-1',
        // The test service's development credential (SigV4 is verified).
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
        maxAttempts: 1,
      });
    });
    after(() => {
      sdk?.destroy();
    });

    test('the backend accepts the generated key and certificate, and refuses no certificate or another one', async () => {
      const mine = await sdk.send(new GenerateClientCertificateCommand({ description: 'backend A' }));
      const other = await sdk.send(new GenerateClientCertificateCommand({ description: 'someone else' }));
      assert.ok(mine.clientCertificateId && mine.pemEncodedCertificate);
      assert.ok(other.clientCertificateId && other.pemEncodedCertificate);
      const x = new X509Certificate(mine.pemEncodedCertificate);
      assert.equal(x.keyUsage === undefined, profile === 'aws', `${profile} profile shape`);

      const t = { accountId: '000000000000', region: 'us-east-1' };
      const tls = await clientTlsOptions({
        store: new ClientCertificateStore(fx.svc.redis, fx.svc.keys),
        vault: fx.svc.vault,
        ...t,
        id: mine.clientCertificateId,
      });
      assert.equal(tls.cert, mine.pemEncodedCertificate);
      assert.match(tls.key, /^-----BEGIN PRIVATE KEY-----\n/);
      assert.ok(x.checkPrivateKey(createPrivateKey(tls.key)));
      const otherTls = await clientTlsOptions({
        store: new ClientCertificateStore(fx.svc.redis, fx.svc.keys),
        vault: fx.svc.vault,
        ...t,
        id: other.clientCertificateId,
      });

      const seen: string[] = [];
      const refused: string[] = [];
      const server: Server = createServer(
        { ...serverCert, requestCert: true, rejectUnauthorized: true, ca: [mine.pemEncodedCertificate] },
        (req, res) => {
          seen.push((req.socket as TLSSocket).getPeerCertificate().fingerprint256);
          res.end('hello, API Gateway');
        },
      );
      server.on('tlsClientError', (err) => refused.push(err.message));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      try {
        const ok = await get(port, serverCert.cert, tls);
        assert.deepEqual(ok, { status: 200, body: 'hello, API Gateway' });
        assert.deepEqual(seen, [x.fingerprint256]);

        const none = await get(port, serverCert.cert);
        assert.ok(none.error, `no client certificate must be refused, got ${JSON.stringify(none)}`);
        const wrong = await get(port, serverCert.cert, otherTls);
        assert.ok(wrong.error, `another certificate must be refused, got ${JSON.stringify(wrong)}`);
        assert.equal(seen.length, 1, 'the refused requests never reached the handler');
        assert.equal(refused.length, 2);
        assert.match(refused[0]!, /peer did not return a certificate/);
        assert.match(String(none.error.code), /CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE|ECONNRESET/);
        // Node's server checks the chain after the handshake and drops the socket: the client sees a reset.
        assert.equal(wrong.error.code, 'ECONNRESET');

        // Why the other certificate was refused: with verification reported instead of enforced, the
        // server names it untrusted while the right one is authorized.
        const verdicts: { authorized: boolean; error: string | undefined }[] = [];
        const reporter: Server = createServer(
          { ...serverCert, requestCert: true, rejectUnauthorized: false, ca: [mine.pemEncodedCertificate] },
          (req, res) => {
            const s = req.socket as TLSSocket;
            verdicts.push({ authorized: s.authorized, error: s.authorizationError?.toString() });
            res.end();
          },
        );
        reporter.listen(0, '127.0.0.1');
        await once(reporter, 'listening');
        try {
          const rport = (reporter.address() as AddressInfo).port;
          assert.equal((await get(rport, serverCert.cert, tls)).status, 200);
          assert.equal((await get(rport, serverCert.cert, otherTls)).status, 200);
          assert.deepEqual(verdicts[0], { authorized: true, error: undefined });
          assert.equal(verdicts[1]!.authorized, false);
          assert.match(verdicts[1]!.error!, /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/);
        } finally {
          reporter.close();
        }
      } finally {
        server.close();
      }
    });
  });
}

describe('clientTlsOptions', () => {
  const fx = useService();

  test('throws NotFoundException for an id that does not exist', async () => {
    await assert.rejects(
      clientTlsOptions({
        store: new ClientCertificateStore(fx.svc.redis, fx.svc.keys),
        vault: fx.svc.vault,
        accountId: '000000000000',
        region: 'us-east-1',
        id: 'nope00',
      }),
      // AWS's words: docs/aws-behaviour.md, "Errors".
      { name: 'NotFoundException', message: 'Invalid Client Certificate identifier specified' },
    );
  });

  test('refuses to decrypt with another master key or under another record', async () => {
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
    assert.equal(res.status, 201);
    const { clientCertificateId: id } = (await res.json()) as { clientCertificateId: string };
    const store = new ClientCertificateStore(fx.svc.redis, fx.svc.keys);
    const t = { accountId: '000000000000', region: 'us-east-1' };
    await assert.rejects(
      clientTlsOptions({ store, vault: new KeyVault([randomBytes(32).toString('base64')]), ...t, id }),
      /unknown master key/,
    );
    // The same sealed key copied under another id: the AAD no longer matches.
    const sealed = await store.getEncryptedKey(t, id);
    await fx.svc.redis.hset(fx.svc.keys.certificate(t, 'copy01'), 'pem', 'x', 'key', sealed!);
    await assert.rejects(
      clientTlsOptions({ store, vault: fx.svc.vault, ...t, id: 'copy01' }),
      /unable to authenticate/,
    );
  });
});
