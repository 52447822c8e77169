/**
 * The bench's pre-auth flood (`npm run bench -- --phase preauth`): its own process, apart from the API
 * and from the process that measures, so its CPU is not the measurer's. FLOOD_URL names the API,
 * FLOOD_CONNECTIONS how many connections (16), each from its own loopback address (127.0.0.2, .3, ...,
 * so each has its own failed-authentication budget), each sending worst-case unauthenticated
 * requests back to back, in turn: a query of 4,000 repeats of one key (8 KB, under Node's header limit, so the
 * API's own bound answers it) with a valid access key id and
 * a wrong signature (issue 23's 77 ms of CPU each before the bounds), the same signature on a plain
 * path (a SigV4 403, then 429s), a chunked POST with no Authorization that never finishes its body,
 * and headers close to the 16 KiB limit. Prints `flooding` once started; on SIGTERM prints one JSON
 * line: requests answered by status, and connection errors.
 */
import { request, Agent } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../api/auth/sha256.js';
import { REGION } from './load.js';

const base = new URL(process.env.FLOOD_URL ?? 'http://127.0.0.1:8080');
const connections = Number(process.env.FLOOD_CONNECTIONS ?? 16);
const host = `${base.hostname}:${base.port}`;
const signer = new SignatureV4({
  service: 'apigateway',
  region: REGION,
  credentials: { accessKeyId: 'test', secretAccessKey: 'not-the-secret' },
  sha256: NodeSha256,
});

const byStatus: Record<string, number> = {};
let errors = 0;
let stopping = false;

/** Headers of a GET of `path` signed with the wrong secret for the valid access key id `test`. */
async function wrongSignature(path: string): Promise<Record<string, string>> {
  const signed = await signer.sign({
    method: 'GET',
    protocol: 'http:',
    hostname: base.hostname,
    port: Number(base.port),
    path,
    query: {},
    headers: { host },
  });
  return signed.headers as Record<string, string>;
}

const repeatedKey = `/clientcertificates?${Array.from({ length: 4000 }, () => 'a').join('&')}`;

type Shot = { method: string; path: string; headers: Record<string, string>; body?: 'trickle' };
async function shots(): Promise<Shot[]> {
  const auth = await wrongSignature('/clientcertificates');
  return [
    { method: 'GET', path: repeatedKey, headers: auth },
    { method: 'GET', path: '/clientcertificates', headers: auth },
    {
      method: 'POST',
      path: '/clientcertificates',
      headers: { host, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      body: 'trickle',
    },
    { method: 'GET', path: '/clientcertificates', headers: { ...auth, 'x-pad': 'x'.repeat(15_000) } },
  ];
}

function send(agent: Agent, localAddress: string, s: Shot): Promise<void> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: base.hostname,
        port: base.port,
        method: s.method,
        path: s.path,
        headers: s.headers,
        agent,
        localAddress,
      },
      (res) => {
        byStatus[res.statusCode ?? 0] = (byStatus[res.statusCode ?? 0] ?? 0) + 1;
        res.resume();
        res.once('end', () => resolve());
        res.once('error', () => resolve());
      },
    );
    req.once('error', () => {
      errors += 1;
      resolve();
    });
    req.setTimeout(5000, () => req.destroy());
    if (s.body === 'trickle')
      req.write('{'); // and never more: the answer must not wait for it
    else req.end();
  });
}

async function loop(i: number, list: Shot[]) {
  const localAddress = `127.0.0.${2 + (i % 250)}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let n = i; !stopping; n++) await send(agent, localAddress, list[n % list.length]!);
  agent.destroy();
}

const list = await shots();
const loops = Array.from({ length: connections }, (_, i) => loop(i, list));
process.stdout.write('flooding\n');
process.once('SIGTERM', () => {
  stopping = true;
  process.stdout.write(`${JSON.stringify({ byStatus, errors })}\n`);
  process.exit(0);
});
await Promise.all(loops);
