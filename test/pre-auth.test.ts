import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { canonicalQueryBag } from '../api/auth/sigv4.js';
import {
  MAX_QUERY_PARAMETERS,
  MAX_REQUEST_TARGET_BYTES,
  addressKey,
  checkRequestTarget,
} from '../api/pre-auth.js';
import type { ApiError } from '../shared/errors.js';
import { useService } from './helpers/fixture.js';
import { signRequest, signedFetch } from '../devtools/signed-fetch.js';

/**
 * One request from `localAddress` (another loopback address is another client), on a connection of its
 * own or, with `agent`, on the agent's kept-alive one.
 */
function rawGet(
  port: number,
  path: string,
  headers: Record<string, string>,
  localAddress = '127.0.0.1',
  agent: Agent | false = false,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, localAddress, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A GET signed with a wrong secret for the known access key `test`: it fails SigV4 with a 403. */
async function wronglySigned(
  base: string,
  path: string,
): Promise<{ path: string; headers: Record<string, string> }> {
  const { url, init } = await signRequest(base, path, { secretAccessKey: 'not-the-secret' });
  const u = new URL(url);
  return {
    path: `${u.pathname}${u.search}`,
    headers: { ...(init.headers as Record<string, string>), host: u.host },
  };
}

describe('bounds before authentication', () => {
  const fx = useService({ workers: 0 });

  it('refuses a query of 4,000 repeats of one key with a 400 before SigV4 builds its canonical form', async () => {
    const { path, headers } = await wronglySigned(fx.svc.api.url, '/clientcertificates');
    const flood = `${path}?${Array.from({ length: 4000 }, () => 'a').join('&')}`;
    const res = await rawGet(fx.svc.api.port, flood, headers);
    assert.equal(res.status, 400, res.body);
    assert.equal(res.headers['x-amzn-errortype'], 'BadRequestException');
    assert.match(JSON.parse(res.body).message, new RegExp(`at most ${MAX_QUERY_PARAMETERS} are accepted`));
  });

  it(`refuses a request target over ${MAX_REQUEST_TARGET_BYTES} bytes with a 414 (when Node's 431 is raised)`, () => {
    const long = `http://h/clientcertificates?position=${'A'.repeat(MAX_REQUEST_TARGET_BYTES)}`;
    assert.throws(
      () => checkRequestTarget(long),
      (e: ApiError) => e.status === 414 && e.type === 'UriTooLongException',
    );
    assert.throws(
      () => checkRequestTarget(`http://h/?${'a&'.repeat(MAX_QUERY_PARAMETERS)}`),
      (e: ApiError) => e.status === 400,
    );
    checkRequestTarget(`http://h/?${'a&'.repeat(MAX_QUERY_PARAMETERS - 1)}a`);
  });

  it('still answers a signed request with a query at the limit', async () => {
    const query = Array.from({ length: MAX_QUERY_PARAMETERS - 1 }, (_, i) => `x${i}=1`).join('&');
    const res = await signedFetch(fx.svc.api.url, `/clientcertificates?limit=2&${query}`);
    assert.equal(res.status, 200, await res.text());
  });

  it('builds the canonical query of many repeats in linear time (no bound in front of it)', () => {
    const time = (n: number) => {
      const search = `?${Array.from({ length: n }, () => 'a').join('&')}`;
      let best = Infinity;
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        canonicalQueryBag(search, false);
        best = Math.min(best, performance.now() - t);
      }
      return best;
    };
    time(1000); // warm up
    const small = time(5000);
    const large = time(20_000);
    // Linear: 4x the repeats is about 4x the time; the old copy-per-repeat bag took 16x (seconds here).
    // Margin for a garbage collection on a shared machine: the old bag took over 300 ms for 20,000.
    assert.ok(large < small * 10 + 50, `5,000 repeats ${small.toFixed(1)} ms, 20,000 ${large.toFixed(1)} ms`);
  });
});

describe('a budget for requests that fail authentication', () => {
  const fx = useService({ workers: 0, api: { authFailureBurst: 5, authFailureRate: 0.2 } });

  it('refuses an address with 429 and Retry-After once it spent its failures; other addresses are answered', async () => {
    const { path, headers } = await wronglySigned(fx.svc.api.url, '/clientcertificates');
    for (let i = 0; i < 5; i++) {
      const res = await rawGet(fx.svc.api.port, path, headers, '127.0.0.3');
      assert.equal(res.status, 403, res.body);
    }
    const refused = await rawGet(fx.svc.api.port, path, headers, '127.0.0.3');
    assert.equal(refused.status, 429, refused.body);
    assert.equal(refused.headers['x-amzn-errortype'], 'TooManyRequestsException');
    assert.ok(Number(refused.headers['retry-after']) >= 1, String(refused.headers['retry-after']));
    // Another client address still gets SigV4's own answer, and a good signature from it a 200.
    const other = await rawGet(fx.svc.api.port, path, headers, '127.0.0.4');
    assert.equal(other.status, 403);
    const good = await signRequest(fx.svc.api.url, '/clientcertificates');
    const u = new URL(good.url);
    const ok = await rawGet(
      fx.svc.api.port,
      `${u.pathname}${u.search}`,
      { ...(good.init.headers as Record<string, string>), host: u.host },
      '127.0.0.4',
    );
    assert.equal(ok.status, 200, ok.body);
  });

  it('keys IPv6 clients by their /64', () => {
    assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:db8:1:2::9'), '2001:db8:1:2::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(addressKey('10.0.0.1'), '10.0.0.1');
  });
});

describe('a spent budget holds back the connections that fail, not their address', () => {
  const DELAY_MS = 1500;
  const fx = useService({
    workers: 0,
    api: { authFailureBurst: 5, authFailureRate: 0.2, authFailureDelayMs: DELAY_MS },
  });

  it('holds each refusal on a failing connection for AUTH_FAILURE_DELAY_MS; a signed client from the same address is answered at once', async () => {
    const port = fx.svc.api.port;
    const { path, headers } = await wronglySigned(fx.svc.api.url, '/clientcertificates');
    const failing = new Agent({ keepAlive: true, maxSockets: 1 });
    const timed = async <T>(p: Promise<T>) => {
      const t = performance.now();
      const r = await p;
      return { ...r, ms: performance.now() - t };
    };
    try {
      for (let i = 0; i < 5; i++) {
        const res = await timed(rawGet(port, path, headers, '127.0.0.7', failing));
        assert.equal(res.status, 403, res.body);
        assert.ok(res.ms < DELAY_MS / 2, `a failure within the budget took ${res.ms.toFixed(0)} ms`);
      }
      // Over the budget: the failing connection's next request waits for its 429 ...
      const held = timed(rawGet(port, path, headers, '127.0.0.7', failing));
      // ... while a signed client from the same address, on its own connection, gets its 200 at once.
      const good = await signRequest(fx.svc.api.url, '/clientcertificates');
      const u = new URL(good.url);
      const signedHeaders = { ...(good.init.headers as Record<string, string>), host: u.host };
      const ok = await timed(rawGet(port, `${u.pathname}${u.search}`, signedHeaders, '127.0.0.7'));
      assert.equal(ok.status, 200, ok.body);
      assert.ok(ok.ms < DELAY_MS / 2, `the signed request took ${ok.ms.toFixed(0)} ms`);
      const refused = await held;
      assert.equal(refused.status, 429, refused.body);
      assert.equal(refused.headers['x-amzn-errortype'], 'TooManyRequestsException');
      assert.ok(Number(refused.headers['retry-after']) >= 1, String(refused.headers['retry-after']));
      assert.ok(refused.ms >= DELAY_MS - 100, `the 429 came after ${refused.ms.toFixed(0)} ms`);
      // The failing connection stays held back, even with a good signature: its request is not read.
      const again = await timed(
        rawGet(port, `${u.pathname}${u.search}`, signedHeaders, '127.0.0.7', failing),
      );
      assert.equal(again.status, 429, again.body);
      assert.ok(again.ms >= DELAY_MS - 100, `the second 429 came after ${again.ms.toFixed(0)} ms`);
    } finally {
      failing.destroy();
    }
  });

  it('closes a connection that pipelines a request behind a held refusal', async () => {
    const { path, headers } = await wronglySigned(fx.svc.api.url, '/clientcertificates');
    const head = `GET ${path} HTTP/1.1\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')}\r\n`;
    const s = await new Promise<Socket>((resolve, reject) => {
      const c = connect({ host: '127.0.0.1', port: fx.svc.api.port, localAddress: '127.0.0.8' }, () =>
        resolve(c),
      );
      c.on('error', reject);
    });
    s.on('error', () => undefined);
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    const closed = new Promise<number>((resolve) => {
      const t = performance.now();
      s.once('close', () => resolve(performance.now() - t));
    });
    // Five failures the budget allows, a sixth that is held, a seventh pipelined behind it.
    s.write(head.repeat(7));
    const ms = await Promise.race([closed, sleep(DELAY_MS * 3).then(() => Infinity)]);
    assert.ok(ms < DELAY_MS / 2, `the pipelining connection was closed after ${ms.toFixed(0)} ms`);
    // Node answers pipelined requests in order, so the closed connection may take earlier answers with it.
    assert.doesNotMatch(got, /HTTP\/1\.1 429 /);
    s.destroy();
  });
});

describe('connections before authentication', () => {
  const fx = useService({
    workers: 0,
    api: { unauthenticatedIdleTimeoutMs: 600, maxConnectionsPerAddress: 5 },
  });

  const openSocket = (localAddress = '127.0.0.1') =>
    new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: fx.svc.api.port, localAddress }, () => resolve(s));
      s.on('error', reject);
    });
  const closedWithin = (s: Socket, ms: number) =>
    new Promise<boolean>((resolve) => {
      if (s.destroyed) return resolve(true);
      const t = setTimeout(() => resolve(false), ms);
      s.once('close', () => (clearTimeout(t), resolve(true)));
    });

  it('closes an idle connection that never authenticated within UNAUTHENTICATED_IDLE_TIMEOUT_MS', async () => {
    const s = await openSocket();
    s.on('error', () => undefined);
    assert.equal(await closedWithin(s, 3000), true, 'an idle unauthenticated socket was left open');
  });

  it('keeps a connection that carried a signed request open past it', async () => {
    const { url, init } = await signRequest(fx.svc.api.url, '/clientcertificates');
    const u = new URL(url);
    const s = await openSocket();
    s.on('error', () => undefined);
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    const headers = { ...(init.headers as Record<string, string>), host: u.host };
    s.write(
      `GET ${u.pathname}${u.search} HTTP/1.1\r\n${Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('')}\r\n`,
    );
    assert.equal(await closedWithin(s, 2000), false);
    assert.match(got, /^HTTP\/1\.1 200 /);
    s.destroy();
  });

  it('closes connections over MAX_CONNECTIONS_PER_ADDRESS from one address; another address is served', async () => {
    const held = await Promise.all(Array.from({ length: 5 }, () => openSocket('127.0.0.5')));
    for (const s of held) s.on('error', () => undefined);
    const extra = await openSocket('127.0.0.5');
    extra.on('error', () => undefined);
    assert.equal(await closedWithin(extra, 1000), true);
    const other = await signedFetch(fx.svc.api.url, '/clientcertificates');
    assert.equal(other.status, 200);
    for (const s of held) s.destroy();
  });
});
