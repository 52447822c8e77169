import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { loadGatewayConfig } from '../gateway/config.js';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { loadConfig } from '../shared/config.js';
import { useService } from './helpers/fixture.js';
import { nodeArgs } from '../devtools/entry.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { serverCertificate } from '../devtools/tls.js';

const T = { accountId: '000000000000', region: 'us-east-1' };

async function generate(apiUrl: string, body: object = {}): Promise<{ id: string; pem: string }> {
  const res = await signedFetch(apiUrl, '/clientcertificates', {
    method: 'POST',
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 201);
  const j = (await res.json()) as { clientCertificateId: string; pemEncodedCertificate: string };
  return { id: j.clientCertificateId, pem: j.pemEncodedCertificate };
}

interface Seen {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  fingerprint: string;
}

/** What came back through the gateway. */
interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

function send(
  url: string,
  opts: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        headers: opts.headers,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('the mTLS gateway (Node TLS backend)', () => {
  const fx = useService();
  const serverCert = serverCertificate();
  let mine: { id: string; pem: string };
  let backend: Server;
  let target: URL;
  const seen: Seen[] = [];
  const gateways: Gateway[] = [];

  const start = async (
    id: string,
    extra: { targetCa?: string | null; refreshIntervalMs?: number; timeoutMs?: number } = {},
  ) => {
    const gw = await createGateway({
      store: fx.svc.store,
      vault: fx.svc.vault,
      ...T,
      clientCertificateId: id,
      target,
      targetCa: extra.targetCa === null ? undefined : (extra.targetCa ?? serverCert.cert),
      log: fx.svc.log,
      refreshIntervalMs: extra.refreshIntervalMs ?? 200,
      timeoutMs: extra.timeoutMs,
    });
    gateways.push(gw);
    return { gw, url: await gw.listen(0, '127.0.0.1') };
  };

  before(async () => {
    mine = await generate(fx.svc.api.url, { description: 'gateway' });
    // Like a backend with `ssl_verify_client on`: the handshake requires this one certificate.
    backend = createServer(
      { ...serverCert, requestCert: true, rejectUnauthorized: true, ca: [mine.pem] },
      (req, res) => {
        seen.push({
          method: req.method,
          url: req.url,
          headers: req.headers,
          fingerprint: (req.socket as TLSSocket).getPeerCertificate().fingerprint256,
        });
        if (req.url === '/base/slow') return; // never answers
        if (req.url === '/base/duplex') {
          // Answers before the request body has ended: the gateway must stream both ways.
          res.writeHead(200, { 'content-type': 'text/plain' });
          req.on('data', (d: Buffer) => res.write(`got ${d.toString()};`));
          req.on('end', () => res.end('done'));
          return;
        }
        const hash = createHash('sha256');
        let length = 0;
        req.on('data', (d: Buffer) => {
          hash.update(d);
          length += d.length;
        });
        req.on('end', () => {
          res.setHeader('Set-Cookie', ['a=1', 'b=2']);
          res.setHeader('X-Backend', 'yes');
          res.writeHead(207, 'Multi Things', { 'content-type': 'application/json' });
          res.end(JSON.stringify({ length, sha256: hash.digest('hex') }));
        });
      },
    );
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    target = new URL(`https://127.0.0.1:${(backend.address() as AddressInfo).port}/base`);
  });
  after(async () => {
    for (const g of gateways) await g.close();
    backend?.close();
    backend?.closeAllConnections();
  });

  test('forwards method, path, query, headers and body, presenting the certificate, and passes the answer through', async () => {
    const { url } = await start(mine.id);
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    const before = seen.length;
    const res = await send(url, {
      method: 'PUT',
      path: '/pets/1?x=1&y=%20',
      headers: {
        'content-type': 'application/octet-stream',
        'x-custom': 'kept',
        connection: 'keep-alive, x-connection-only',
        'x-connection-only': 'dropped',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
      },
      body,
    });
    assert.equal(res.status, 207);
    assert.deepEqual(JSON.parse(res.body.toString()), {
      length: body.length,
      sha256: createHash('sha256').update(body).digest('hex'),
    });
    assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(res.headers['x-backend'], 'yes');
    const s = seen[before]!;
    assert.equal(s.method, 'PUT');
    assert.equal(s.url, '/base/pets/1?x=1&y=%20');
    assert.equal(s.fingerprint, new X509Certificate(mine.pem).fingerprint256);
    assert.equal(s.headers['x-custom'], 'kept');
    assert.equal(s.headers.host, target.host);
    assert.equal(s.headers['content-length'], String(body.length));
    for (const h of ['x-connection-only', 'keep-alive', 'te', 'proxy-authorization']) {
      assert.equal(s.headers[h], undefined, `${h} must not reach the backend`);
    }
    assert.notEqual(s.headers.connection, 'keep-alive, x-connection-only');
  });

  test('streams the request and the answer both ways at once', async () => {
    const { url } = await start(mine.id);
    const u = new URL(url);
    const req = httpRequest({
      host: u.hostname,
      port: u.port,
      method: 'POST',
      path: '/duplex',
      agent: false,
    });
    req.write('one');
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    res.setEncoding('utf8');
    let text = '';
    const waitFor = (s: string) =>
      new Promise<void>((resolve) => {
        const check = () => text.includes(s) && (res.off('data', onData), resolve());
        const onData = (d: string) => {
          text += d;
          check();
        };
        res.on('data', onData);
        check();
      });
    // The backend's answer to the first chunk arrives while the request is still open.
    await waitFor('got one;');
    req.end('two');
    await waitFor('done');
    assert.equal(text, 'got one;got two;done');
  });

  test('a certificate whose tags and description change keeps working; a deleted one gets 502 naming the id', async () => {
    // `mine` keeps serving while `other` (which the backend would refuse anyway) is deleted.
    const other = await generate(fx.svc.api.url);
    const { gw, url } = await start(mine.id);
    const { gw: gwOther, url: urlOther } = await start(other.id);
    const tag = await signedFetch(
      fx.svc.api.url,
      `/tags/${encodeURIComponent(`arn:aws:apigateway:us-east-1::/clientcertificates/${mine.id}`)}`,
      {
        method: 'PUT',
        body: JSON.stringify({ tags: { team: 'payments' } }),
      },
    );
    assert.equal(tag.status, 204);
    const patch = await signedFetch(fx.svc.api.url, `/clientcertificates/${mine.id}`, {
      method: 'PATCH',
      body: JSON.stringify({ patchOperations: [{ op: 'replace', path: '/description', value: 'renamed' }] }),
    });
    assert.equal(patch.status, 200);
    await gw.refresh();
    assert.equal((await send(url, { path: '/after-tags' })).status, 207);
    assert.equal(gw.deleted, false);

    const del = await signedFetch(fx.svc.api.url, `/clientcertificates/${other.id}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    const t0 = Date.now();
    while (!gwOther.deleted && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(gwOther.deleted, 'the gateway noticed the delete within 15 s');
    assert.equal(gw.deleted, false, 'the other gateway is unaffected');
    const res = await send(urlOther, { path: '/x' });
    assert.equal(res.status, 502);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(res.body.toString()), {
      message: `Client certificate ${other.id} was deleted: the gateway no longer presents it`,
    });
  });

  test('an unknown id: the gateway does not start and names the id, account and region', async () => {
    await assert.rejects(start('zzzzzz'), {
      name: 'GatewayStartError',
      message: 'client certificate zzzzzz was not found in account 000000000000, region us-east-1',
    });
  });

  test('verifies the target against the system CAs when no target CA is given', async () => {
    const { url } = await start(mine.id, { targetCa: null });
    const res = await send(url);
    assert.equal(res.status, 502);
    assert.match(
      JSON.parse(res.body.toString()).message,
      /could not reach https:\/\/127\.0\.0\.1:\d+: DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED/,
    );
  });

  test('a backend slower than the timeout gets 504', async () => {
    const { url } = await start(mine.id, { timeoutMs: 300 });
    const res = await send(url, { path: '/slow' });
    assert.equal(res.status, 504);
    assert.equal(res.headers['x-amzn-errortype'], 'GatewayTimeoutException');
    assert.deepEqual(JSON.parse(res.body.toString()), { message: 'Endpoint request timed out' });
  });

  test('a request in flight when the certificate is found deleted gets 502 naming the id, not a reset', async () => {
    // Last to use `mine`: it is deleted here. The backend holds /slow without answering, so the
    // request is on one of the certificate's sockets when refresh() finds it deleted and drops them.
    const { gw, url } = await start(mine.id, { refreshIntervalMs: 60_000 });
    const before = seen.length;
    const held = send(url, { path: '/slow' });
    const t0 = Date.now();
    while (!seen.slice(before).some((s) => s.url === '/base/slow') && Date.now() - t0 < 10_000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const del = await signedFetch(fx.svc.api.url, `/clientcertificates/${mine.id}`, { method: 'DELETE' });
    assert.equal(del.status, 202);
    await gw.refresh();
    const res = await held;
    assert.equal(res.status, 502);
    assert.deepEqual(JSON.parse(res.body.toString()), {
      message: `Client certificate ${mine.id} was deleted: the gateway no longer presents it`,
    });
  });

  test('never logs the private key', () => {
    const all = fx.svc.logs.lines.join('\n');
    assert.doesNotMatch(all, /PRIVATE KEY/);
  });

  test('npm run gateway refuses an unknown id with a message naming it, the account and the region', async () => {
    const child = spawn(
      process.execPath,
      [
        ...nodeArgs('gateway/main.ts'),
        '--client-certificate-id',
        'nope00',
        '--target',
        target.href,
        '--listen',
        '127.0.0.1:0',
        '--region',
        'eu-west-1',
      ],
      {
        env: {
          ...process.env,
          REDIS_URL: fx.redis.url,
          REDIS_PREFIX: fx.svc.keys.prefix,
          MASTER_KEY: fx.svc.masterKey,
          NODE_ENV: 'test',
          LOG_LEVEL: 'silent',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 1);
    assert.equal(
      stderr.trim(),
      'gateway not started: client certificate nope00 was not found in account 000000000000, region eu-west-1',
    );
  });
});

describe('gateway options', () => {
  /** The gateway's options from flags over `env`, as gateway/main.ts reads them. */
  const load = (argv: string[], env: NodeJS.ProcessEnv) => loadGatewayConfig(argv, loadConfig(env));

  test('flags win over GATEWAY_* variables; defaults are the development account, us-east-1 and 127.0.0.1:8081', () => {
    const c = load(['--client-certificate-id', 'abc123'], { GATEWAY_TARGET: 'https://backend:8443/' });
    assert.equal(c.clientCertificateId, 'abc123');
    assert.equal(c.target.href, 'https://backend:8443/');
    assert.deepEqual(
      [c.listenHost, c.listenPort, c.accountId, c.region],
      ['127.0.0.1', 8081, '000000000000', 'us-east-1'],
    );
    assert.equal(c.targetCaFile, undefined);
    const f = load(
      [
        '--client-certificate-id',
        'abc123',
        '--target',
        'https://[::1]:9443',
        '--listen',
        '[::1]:0',
        '--account',
        '123456789012',
        '--region',
        'eu-west-1',
        '--target-ca',
        'ca.pem',
      ],
      { GATEWAY_CLIENT_CERTIFICATE_ID: 'zzz999', GATEWAY_ACCOUNT: '999999999999' },
    );
    assert.deepEqual(
      [
        f.clientCertificateId,
        f.target.hostname,
        f.listenHost,
        f.listenPort,
        f.accountId,
        f.region,
        f.targetCaFile,
      ],
      ['abc123', '[::1]', '::1', 0, '123456789012', 'eu-west-1', 'ca.pem'],
    );
  });

  test('names every missing or wrong option', () => {
    assert.throws(() => load([], {}), {
      name: 'ConfigError',
      message:
        'invalid gateway configuration: --client-certificate-id (GATEWAY_CLIENT_CERTIFICATE_ID) is required; --target (GATEWAY_TARGET) is required, e.g. https://127.0.0.1:8443',
    });
    assert.throws(
      () =>
        load(['--target', 'http://x:80'], {
          GATEWAY_CLIENT_CERTIFICATE_ID: 'abc123',
          GATEWAY_LISTEN: '8081',
        }),
      /--target \(GATEWAY_TARGET\) must be an https:\/\/ URL without query, got "http:\/\/x:80"; --listen \(GATEWAY_LISTEN\) must be host:port, got "8081"/,
    );
    assert.throws(() => load(['--bogus'], {}), /invalid gateway options: Unknown option '--bogus'/);
  });

  test('refuses a region that does not exist, as the API refuses it in a signature (docs/aws-behaviour.md, Regions)', () => {
    assert.throws(
      () =>
        load(['--region', 'us-east-9'], {
          GATEWAY_CLIENT_CERTIFICATE_ID: 'abc123',
          GATEWAY_TARGET: 'https://x:443',
        }),
      /--region \(GATEWAY_REGION\) must be a region that exists in the AWS SDK's partition data, such as us-east-1, got "us-east-9"/,
    );
  });

  test('the GATEWAY_* variables are entries of the service configuration: account and region default to DEFAULT_*', () => {
    const c = load(['--target', 'https://backend:8443'], {
      GATEWAY_CLIENT_CERTIFICATE_ID: ' abc123 ',
      DEFAULT_ACCOUNT_ID: '111111111111',
      DEFAULT_REGION: 'eu-central-1',
      GATEWAY_REFRESH_MS: '250',
    });
    assert.deepEqual(
      [c.clientCertificateId, c.accountId, c.region, c.refreshIntervalMs],
      ['abc123', '111111111111', 'eu-central-1', 250],
    );
    assert.equal(
      load(['--client-certificate-id', 'abc123', '--target', 'https://b'], {}).refreshIntervalMs,
      5000,
    );
    assert.throws(() => loadConfig({ GATEWAY_REFRESH_MS: '50' }), {
      name: 'ConfigError',
      message: 'invalid configuration: GATEWAY_REFRESH_MS must be between 100 and 15000, got 50',
    });
  });
});
