/**
 * `npm run bench:gateway [-- --seconds 10 --connections 32 --rounds 3]`: requests per second through the
 * mTLS gateway (`dist/gateway/main.js`, its own process) to nginx with `ssl_verify_client on`, beside
 * the same client calling nginx directly over mutual TLS, in the same run. Both sides keep their
 * connections alive; rounds alternate direct and proxied so a change in the machine's load hits both.
 *
 * Needs redis-server and nginx (Debian: nginx-light) on PATH.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Agent as HttpAgent, request as httpRequest, type RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { clientTlsOptions } from '../shared/client-tls.js';
import { freePort, startRedis, waitFor } from '../devtools/redis-server.js';
import { nginxMissing, startNginx } from '../devtools/nginx.js';
import { startService } from '../devtools/service.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { serverCertificate } from '../devtools/tls.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
  },
});
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Result {
  requests: number;
  errors: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

/** `connections` loops, each sending GET after GET on its own kept-alive socket for `seconds`. */
async function load(
  send: (opts: RequestOptions, cb: (status: number) => void) => void,
  forSeconds = seconds,
): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  const until = Date.now() + forSeconds * 1000;
  const loop = async () => {
    while (Date.now() < until) {
      const t0 = process.hrtime.bigint();
      const status = await new Promise<number>((resolve) => send({ path: '/bench', method: 'GET' }, resolve));
      if (status !== 200) errors += 1;
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((x, y) => x - y);
  const q = (p: number) => Math.round(latencies[Math.floor(p * (latencies.length - 1))]! * 100) / 100;
  return {
    requests: latencies.length,
    errors,
    rps: Math.round(latencies.length / elapsed),
    p50Ms: q(0.5),
    p99Ms: q(0.99),
  };
}

function sender(req: typeof httpRequest, base: RequestOptions) {
  return (opts: RequestOptions, cb: (status: number) => void) => {
    const r = req({ ...base, ...opts }, (res) => {
      res.resume();
      res.on('end', () => cb(res.statusCode ?? 0));
    });
    r.on('error', () => cb(0));
    r.end();
  };
}

const missing = nginxMissing();
if (missing) {
  process.stderr.write(`bench:gateway needs nginx: ${missing}\n`);
  process.exit(1);
}

const redis = await startRedis();
const prefix = `gb${randomBytes(3).toString('hex')}`;
const svc = await startService(redis.url, { prefix });
const serverCert = serverCertificate();
const tmp = mkdtempSync(join(tmpdir(), 'bench-gateway-'));
let gatewayProc: ReturnType<typeof spawn> | undefined;
let nginx: Awaited<ReturnType<typeof startNginx>> | undefined;
try {
  const res = await signedFetch(svc.api.url, '/clientcertificates', { method: 'POST', body: '{}' });
  const { clientCertificateId: id, pemEncodedCertificate: pem } = (await res.json()) as {
    clientCertificateId: string;
    pemEncodedCertificate: string;
  };
  nginx = await startNginx({ server: serverCert, clientCa: pem });
  const gatewayPort = await freePort();
  const caFile = join(tmp, 'backend-ca.pem');
  writeFileSync(caFile, serverCert.cert);
  gatewayProc = spawn(
    process.execPath,
    [
      join(root, 'dist/gateway/main.js'),
      '--client-certificate-id',
      id,
      '--target',
      `https://127.0.0.1:${nginx.port}`,
      '--listen',
      `127.0.0.1:${gatewayPort}`,
      '--target-ca',
      caFile,
    ],
    {
      env: {
        ...process.env,
        REDIS_URL: redis.url,
        REDIS_PREFIX: prefix,
        MASTER_KEY: svc.masterKey,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const r = httpRequest({ host: '127.0.0.1', port: gatewayPort, path: '/', agent: false }, (res) => {
          res.resume();
          resolve(true);
        });
        r.on('error', () => resolve(false));
        r.end();
      }),
    30_000,
    200,
  );

  const tls = await clientTlsOptions({
    store: svc.store,
    vault: svc.vault,
    accountId: '000000000000',
    region: 'us-east-1',
    id,
  });
  // The service is not part of what is measured: stop its workers and API.
  await svc.close();

  // Warm-up, not reported: JIT compilation and TLS session set-up on both paths.
  {
    const a = new HttpsAgent({ keepAlive: true, maxSockets: connections, ...tls, ca: serverCert.cert });
    await load(
      sender(httpsRequest as typeof httpRequest, { host: '127.0.0.1', port: nginx.port, agent: a }),
      2,
    );
    a.destroy();
    const b = new HttpAgent({ keepAlive: true, maxSockets: connections });
    await load(sender(httpRequest, { host: '127.0.0.1', port: gatewayPort, agent: b }), 3);
    b.destroy();
  }
  const results: { round: number; direct: Result; gateway: Result }[] = [];
  for (let round = 1; round <= rounds; round++) {
    const directAgent = new HttpsAgent({
      keepAlive: true,
      maxSockets: connections,
      ...tls,
      ca: serverCert.cert,
    });
    const direct = await load(
      sender(httpsRequest as typeof httpRequest, { host: '127.0.0.1', port: nginx.port, agent: directAgent }),
    );
    directAgent.destroy();
    const gwAgent = new HttpAgent({ keepAlive: true, maxSockets: connections });
    const gateway = await load(sender(httpRequest, { host: '127.0.0.1', port: gatewayPort, agent: gwAgent }));
    gwAgent.destroy();
    results.push({ round, direct, gateway });
    process.stdout.write(
      `round ${round}: direct ${direct.rps} req/s (p50 ${direct.p50Ms} ms, p99 ${direct.p99Ms} ms, ${direct.errors} errors); ` +
        `through the gateway ${gateway.rps} req/s (p50 ${gateway.p50Ms} ms, p99 ${gateway.p99Ms} ms, ${gateway.errors} errors)\n`,
    );
  }
  process.stdout.write(
    `${JSON.stringify({
      seconds,
      connections,
      cores: availableParallelism(),
      loadavg1mAtEnd: Math.round(loadavg()[0]! * 100) / 100,
      results,
    })}\n`,
  );
} finally {
  if (gatewayProc && gatewayProc.exitCode === null) {
    const exited = once(gatewayProc, 'exit');
    gatewayProc.kill('SIGTERM');
    await exited;
  }
  await nginx?.stop();
  await redis.destroy();
  rmSync(tmp, { recursive: true, force: true });
}
