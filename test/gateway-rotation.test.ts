import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createGateway, type Gateway } from '../gateway/gateway.js';
import { nodeArgs } from '../devtools/entry.js';
import { nginxMissing, startNginx, type TestNginx } from '../devtools/nginx.js';
import { waitFor } from '../devtools/redis-server.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { ecCa, serverCertificate } from '../devtools/tls.js';
import { certificateAuthorityFrom } from '../shared/certificate-authority.js';
import { useService, type ServiceFixture } from './helpers/fixture.js';

const T = { accountId: '000000000000', region: 'us-east-1' };
const SLOW_BYTES = 60_000;

async function generate(fx: ServiceFixture): Promise<{ id: string; pem: string; serial: string }> {
  const res = await signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
  assert.equal(res.status, 201);
  const j = (await res.json()) as { clientCertificateId: string; pemEncodedCertificate: string };
  const serial = new X509Certificate(j.pemEncodedCertificate).serialNumber;
  return { id: j.clientCertificateId, pem: j.pemEncodedCertificate, serial };
}

function get(url: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/*
 * CA mode, so nginx trusts both certificates through their CA. With two AWS-shaped self-signed certificates
 * in one ssl_client_certificate bundle, OpenSSL verifies only the first: both have the subject
 * C=US, L=Seattle, CN=ApiGateway and no key identifiers, so it takes the first as the issuer of either
 * (docs/mtls-gateway.md says how to trust both there).
 */
describe(
  "rotation through the gateway under steady load (AWS's five steps)",
  { skip: nginxMissing() },
  () => {
    const caPem = ecCa('Rotation Test CA');
    const fx = useService({
      ca: certificateAuthorityFrom(caPem.cert, caPem.key, { certFile: 'ca.pem', keyFile: 'ca.key' }),
    });
    const serverCert = serverCertificate();
    let nginx: TestNginx | undefined;
    let gateway: Gateway | undefined;
    after(async () => {
      await gateway?.close();
      await nginx?.stop();
    });

    test('every request is answered; in-flight ones finish with A, later ones use B; nginx logs the serial change', async () => {
      // 1. Generate the new certificate (A is the one in use).
      const a = await generate(fx);
      const b = await generate(fx);
      // 2. The backend trusts both (through their CA).
      nginx = await startNginx({
        server: serverCert,
        clientCa: caPem.cert,
        files: { 'slow.bin': 'x'.repeat(SLOW_BYTES) },
        httpDirectives: "log_format serials '$ssl_client_serial $status $request_uri $bytes_sent';",
        serverDirectives: `access_log {dir}/serials.log serials;
    location = /slow.bin { root {dir}; limit_rate 40k; }`,
      });
      gateway = await createGateway({
        store: fx.svc.store,
        vault: fx.svc.vault,
        ...T,
        clientCertificateId: a.id,
        target: new URL(`https://127.0.0.1:${nginx.port}`),
        targetCa: serverCert.cert,
        log: fx.svc.log,
      });
      const url = await gateway.listen(0, '127.0.0.1');

      // Steady load: 8 clients on kept-alive connections to the gateway, back to back.
      const agent = new Agent({ keepAlive: true, maxSockets: 16 });
      const answers: { status: number; serial: string }[] = [];
      let stop = false;
      const client = async () => {
        while (!stop) {
          const r = await get(`${url}/`, agent);
          answers.push({ status: r.status, serial: /serial=(\S+)/.exec(r.body)?.[1] ?? r.body });
        }
      };
      const clients = Array.from({ length: 8 }, client);
      const until = async (n: number) => {
        const started = Date.now();
        while (answers.length < n && Date.now() - started < 20_000)
          await new Promise((r) => setTimeout(r, 20));
      };
      await until(50);
      // A slow request (about 1.5 s) in flight across the switch.
      const slow = get(`${url}/slow.bin`, agent);
      await new Promise((r) => setTimeout(r, 200));
      // 3. Switch the gateway to B while it runs.
      const switchedAt = answers.length;
      await gateway.use(b.id);
      assert.equal(gateway.clientCertificateId, b.id);
      await until(switchedAt + 100);
      stop = true;
      await Promise.all(clients);
      const slowAnswer = await slow;
      agent.destroy();

      assert.ok(answers.length >= switchedAt + 100, `only ${answers.length} answers`);
      assert.deepEqual(
        answers.filter((x) => x.status !== 200),
        [],
        'every request through the gateway answered 200',
      );
      assert.equal(slowAnswer.status, 200);
      assert.equal(slowAnswer.body.length, SLOW_BYTES, 'the request in flight at the switch finished whole');
      const serials = answers.map((x) => x.serial);
      assert.ok(
        serials.slice(0, switchedAt).every((s) => s === a.serial),
        'before the switch: A',
      );
      assert.ok(
        serials.slice(-50).every((s) => s === b.serial),
        'after the switch: B only',
      );

      // nginx's own log shows the change: A's requests, then B's; the slow download completed with A.
      const log = readFileSync(join(nginx.dir, 'serials.log'), 'utf8').trim().split('\n');
      const first = log.findIndex((l) => l.startsWith(`${b.serial} `));
      assert.ok(first > 0, 'nginx saw A, then B');
      assert.ok(
        log
          .slice(first)
          .filter((l) => !l.includes('/slow.bin'))
          .every((l) => l.startsWith(`${b.serial} 200 `)),
      );
      assert.ok(
        log.some((l) => l.startsWith(`${a.serial} 200 /slow.bin`)),
        'the slow request was served to A',
      );

      // 4. The backend untrusts A; 5. delete A. The gateway, presenting B, is unaffected.
      const del = await signedFetch(fx.svc.api.url, `/clientcertificates/${a.id}`, { method: 'DELETE' });
      assert.equal(del.status, 202);
      await gateway.refresh();
      assert.equal(gateway.deleted, false);
      const after = await get(`${url}/`, new Agent());
      assert.equal(after.status, 200);
      assert.match(after.body, new RegExp(`serial=${b.serial} `));
    });

    test('npm run gateway: SIGHUP switches to the id in GATEWAY_SWITCH_FILE, every request answered meanwhile', async () => {
      const b = await generate(fx);
      const c = await generate(fx);
      const dir = mkdtempSync(join(tmpdir(), 'gateway-switch-'));
      const switchFile = join(dir, 'switch-to');
      writeFileSync(join(dir, 'server.pem'), serverCert.cert);
      const child = spawn(
        process.execPath,
        [
          ...nodeArgs('gateway/main.ts'),
          '--client-certificate-id',
          b.id,
          '--target',
          `https://127.0.0.1:${nginx!.port}`,
          '--target-ca',
          join(dir, 'server.pem'),
          '--listen',
          '127.0.0.1:0',
        ],
        {
          env: {
            ...process.env,
            REDIS_URL: fx.redis.url,
            REDIS_PREFIX: fx.svc.keys.prefix,
            MASTER_KEY: fx.svc.masterKey,
            NODE_ENV: 'test',
            LOG_LEVEL: 'info',
            LOG_FORMAT: 'json',
            GATEWAY_SWITCH_FILE: switchFile,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      try {
        await waitFor(() => /"gateway listening"/.test(stdout), 20_000);
        const url = /"url":"(http:\/\/[^"]+)"/.exec(stdout)![1]!;
        const agent = new Agent({ keepAlive: true });
        const seen: string[] = [];
        const ask = async () => {
          const r = await get(`${url}/`, agent);
          assert.equal(r.status, 200, r.body);
          seen.push(/serial=(\S+)/.exec(r.body)![1]!);
        };
        await ask();
        writeFileSync(switchFile, `${c.id}\n`);
        child.kill('SIGHUP');
        const started = Date.now();
        while (seen[seen.length - 1] !== c.serial && Date.now() - started < 10_000) await ask();
        agent.destroy();
        assert.equal(seen[0], b.serial);
        assert.equal(seen[seen.length - 1], c.serial, 'presents C after the SIGHUP');
        // The log line travels through pino and a pipe: it may reach us after the first answer made with C.
        await waitFor(() => /now presenting another client certificate/.test(stdout), 5_000).catch(
          () => undefined,
        );
        assert.match(stdout, /now presenting another client certificate/);
      } finally {
        child.kill('SIGTERM');
        await once(child, 'exit');
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('switching to a certificate that does not exist is refused, and the one in use stays', async () => {
      const before = gateway!.clientCertificateId;
      await assert.rejects(gateway!.use('zzzzzz'), /client certificate zzzzzz was not found/);
      assert.equal(gateway!.clientCertificateId, before);
    });
  },
);
