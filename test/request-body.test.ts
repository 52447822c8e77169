import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { signRequest, signedFetch } from '../devtools/signed-fetch.js';
import { useService } from './helpers/fixture.js';

/** A raw connection to the API that collects what comes back and says when it closed. */
function open(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () =>
      resolve({ socket, received: () => data, closed }),
    );
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.once('error', reject);
  });
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The head of a request signed for `body` (so it passes the credential and date checks), as raw text. */
async function signedHead(base: string, body: string, extra: Record<string, string>): Promise<string> {
  const { url, init } = await signRequest(base, '/clientcertificates', { method: 'POST', body });
  const u = new URL(url);
  const headers = { ...(init.headers as Record<string, string>), host: u.host, ...extra };
  return `POST ${u.pathname} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

async function metric(base: string, status: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('http_requests_total{') && line.includes(`status="${status}"`))
      n += Number(line.split(' ').at(-1));
  }
  return n;
}

describe('request bodies before authentication', () => {
  const fx = useService({ workers: 0, api: { requestBodyTimeoutMs: 1500 } });

  it('answers a chunked POST without Authorization at once, without waiting for its trickled body', async () => {
    const c = await open(fx.svc.api.port);
    c.socket.write(
      'POST /clientcertificates HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{\r\n',
    );
    // The rest never comes: the 403 must not wait for it, and the connection is closed after it.
    await until('the 403', () => c.received().includes('\r\n\r\n'), 3000);
    assert.match(c.received(), /^HTTP\/1\.1 403 /);
    assert.match(c.received(), /MissingAuthenticationTokenException/);
    assert.match(c.received(), /connection: close/i);
    await Promise.race([
      c.closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('connection left open')), 3000)),
    ]);
  });

  it('gives a signed chunked body REQUEST_BODY_TIMEOUT_MS to arrive, then 408 and closes', async () => {
    const body = '{"description":"slow"}';
    const c = await open(fx.svc.api.port);
    const started = Date.now();
    c.socket.write(await signedHead(fx.svc.api.url, body, { 'transfer-encoding': 'chunked' }));
    c.socket.write('1\r\n{\r\n');
    await until('the 408', () => c.received().includes('\r\n\r\n'), 6000);
    assert.match(c.received(), /^HTTP\/1\.1 408 /);
    assert.match(c.received(), /RequestTimeoutException/);
    assert.ok(Date.now() - started >= 1400, `answered after ${Date.now() - started} ms`);
    c.socket.destroy();
  });

  it('refuses a chunked body over 64 KiB with 413 (read after the signature checks)', async () => {
    const c = await open(fx.svc.api.port);
    c.socket.write(await signedHead(fx.svc.api.url, '{}', { 'transfer-encoding': 'chunked' }));
    const chunk = 'a'.repeat(16 * 1024);
    for (let i = 0; i < 5; i++) c.socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    await until('the 413', () => c.received().includes('\r\n\r\n'), 5000);
    assert.match(c.received(), /^HTTP\/1\.1 413 /);
    c.socket.destroy();
  });

  it('counts a client that aborts its body as 499, logged below error, never as a 500', async () => {
    const before500 = await metric(fx.svc.api.url, '500');
    const before499 = await metric(fx.svc.api.url, '499');
    const errorLines = () => fx.svc.logs.lines.filter((l) => JSON.parse(l).level >= 50).length;
    const errorsBefore = errorLines();
    for (let i = 0; i < 3; i++) {
      const body = `{"description":"${'x'.repeat(200)}"}`;
      const c = await open(fx.svc.api.port);
      c.socket.write(await signedHead(fx.svc.api.url, body, { 'content-length': String(body.length) }));
      c.socket.write(body.slice(0, 20));
      await new Promise((r) => setTimeout(r, 100));
      c.socket.destroy();
    }
    const end = Date.now() + 5000;
    while ((await metric(fx.svc.api.url, '499')) < before499 + 3 && Date.now() < end)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(await metric(fx.svc.api.url, '499'), before499 + 3);
    assert.equal(await metric(fx.svc.api.url, '500'), before500);
    assert.equal(errorLines(), errorsBefore, 'no error-level log line for an aborted request');
    assert.ok(fx.svc.logs.lines.some((l) => l.includes('client closed the request')));
  });
});

describe('strict text', () => {
  const fx = useService({ workers: 1 });

  const post = (body: string | Uint8Array) =>
    signedFetch(fx.svc.api.url, '/clientcertificates', { method: 'POST', body });

  it('refuses a description holding bytes that are not UTF-8, naming the field', async () => {
    const body = Buffer.concat([
      Buffer.from('{"description":"a'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('b"}'),
    ]);
    const res = await post(new Uint8Array(body));
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('x-amzn-errortype'), 'BadRequestException');
    assert.match((await res.json()).message, /not valid UTF-8 \(in description\)/);
  });

  it('refuses a lone surrogate in a description, a tag key and a tag value', async () => {
    for (const [body, field] of [
      ['{"description":"a\\ud800b"}', /^description must be valid Unicode text/],
      ['{"tags":{"k\\udc00":"v"}}', /^A tag key in tags must be valid Unicode text/],
      ['{"tags":{"k":"v\\ud83d"}}', /^The value of tag "k" in tags must be valid Unicode text/],
    ] as const) {
      const res = await post(body);
      assert.equal(res.status, 400, body);
      assert.match((await res.json()).message, field);
    }
  });

  it('stores exactly the text that was signed: astral characters and U+FFFD sent as UTF-8 come back unchanged', async () => {
    const description = 'caf\u00e9 \ud835\udc9c \ud83d\ude00 \ufffd';
    const res = await post(JSON.stringify({ description, tags: { 'k\ud835\udc9c': 'v\u00e9' } }));
    assert.equal(res.status, 201, await res.clone().text());
    const created = await res.json();
    assert.equal(created.description, description);
    const got = await (
      await signedFetch(fx.svc.api.url, `/clientcertificates/${created.clientCertificateId}`)
    ).json();
    assert.equal(got.description, description);
    assert.deepEqual(got.tags, { 'k\ud835\udc9c': 'v\u00e9' });
  });
});
