import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { BODY_LIMIT_BYTES } from '../api/app.js';
import { useService } from './helpers/fixture.js';
import { signRequest, signedFetch } from '../devtools/signed-fetch.js';

interface Case {
  name: string;
  method: string;
  path: string;
  body?: string | Uint8Array;
  /** Send the body chunked, without Content-Length. */
  chunked?: boolean;
  status: number;
  type: string;
  message?: string | RegExp;
}

const tags = (n: number) =>
  JSON.stringify({ tags: Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v'])) });
const nest = (depth: number) => `{"description":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;

const CASES: Case[] = [
  {
    name: 'body over the limit',
    method: 'POST',
    path: '/clientcertificates',
    body: `{"description":"${'a'.repeat(BODY_LIMIT_BYTES)}"}`,
    status: 413,
    type: 'PayloadTooLargeException',
    message: `Request body must not exceed ${BODY_LIMIT_BYTES} bytes`,
  },
  {
    name: 'chunked body over the limit',
    method: 'POST',
    path: '/clientcertificates',
    body: `{"description":"${'a'.repeat(BODY_LIMIT_BYTES * 2)}"}`,
    chunked: true,
    status: 413,
    type: 'PayloadTooLargeException',
  },
  {
    name: 'deeply nested arrays',
    method: 'POST',
    path: '/clientcertificates',
    body: `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
    status: 400,
    type: 'BadRequestException',
    message: 'Request body must be a JSON object',
  },
  {
    name: 'deeply nested objects in a field',
    method: 'POST',
    path: '/clientcertificates',
    body: nest(5000),
    status: 400,
    type: 'BadRequestException',
    message: 'description must be a string',
  },
  {
    name: 'unterminated nesting',
    method: 'POST',
    path: '/clientcertificates',
    body: '['.repeat(60_000),
    status: 400,
    type: 'BadRequestException',
    // AWS's words: docs/aws-behaviour.md, "Operations".
    message: /^Could not parse request body into json/,
  },
  {
    name: 'invalid JSON',
    method: 'POST',
    path: '/clientcertificates',
    body: '{"description":',
    status: 400,
    type: 'BadRequestException',
    // AWS's words: docs/aws-behaviour.md, "Operations".
    message: /^Could not parse request body into json/,
  },
  {
    name: 'invalid UTF-8',
    method: 'POST',
    path: '/clientcertificates',
    body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    status: 400,
    type: 'BadRequestException',
    // AWS's words: docs/aws-behaviour.md, "Operations".
    message: /^Could not parse request body into json/,
  },
  ...['[]', '"text"', '42', 'null', 'true'].map((body) => ({
    name: `non-object JSON ${body}`,
    method: 'POST',
    path: '/clientcertificates',
    body,
    status: 400,
    type: 'BadRequestException',
    message: 'Request body must be a JSON object',
  })),
  {
    name: 'description of the wrong type',
    method: 'POST',
    path: '/clientcertificates',
    body: '{"description":5}',
    status: 400,
    type: 'BadRequestException',
    message: 'description must be a string',
  },
  {
    name: 'description too long',
    method: 'POST',
    path: '/clientcertificates',
    body: JSON.stringify({ description: 'd'.repeat(1025) }),
    status: 400,
    type: 'BadRequestException',
    message: 'description must be at most 1024 characters, got 1025',
  },
  {
    name: 'tags as an array',
    method: 'POST',
    path: '/clientcertificates',
    body: '{"tags":["a"]}',
    status: 400,
    type: 'BadRequestException',
    message: 'tags must be an object mapping tag keys to string values',
  },
  {
    name: 'tag value of the wrong type',
    method: 'POST',
    path: '/clientcertificates',
    body: '{"tags":{"a":1}}',
    status: 400,
    type: 'BadRequestException',
    message: 'Invalid value for tag "a" in tags: tag values must be strings',
  },
  {
    name: 'tag value null',
    method: 'POST',
    path: '/clientcertificates',
    body: '{"tags":{"a":null}}',
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: '51 tags',
    method: 'POST',
    path: '/clientcertificates',
    body: tags(51),
    status: 400,
    type: 'BadRequestException',
    message: 'tags must have at most 50 tags, got 51',
  },
  {
    name: 'a huge tag map',
    method: 'POST',
    path: '/clientcertificates',
    body: tags(5000),
    status: 400,
    type: 'BadRequestException',
    message: 'tags must have at most 50 tags, got 5000',
  },
  {
    name: 'tag key starting with aws:',
    method: 'POST',
    path: '/clientcertificates',
    body: '{"tags":{"aws:x":"v"}}',
    status: 400,
    type: 'BadRequestException',
    message: /must not start with 'aws:'/,
  },
  {
    name: 'tag key too long',
    method: 'POST',
    path: '/clientcertificates',
    body: JSON.stringify({ tags: { ['k'.repeat(129)]: 'v' } }),
    status: 400,
    type: 'BadRequestException',
    message: /at most 128 characters/,
  },
  {
    name: 'tag key __proto__ with an object value',
    method: 'POST',
    path: '/clientcertificates',
    body: '{"tags":{"__proto__":{"x":"y"}}}',
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: 'control character in the description',
    method: 'POST',
    path: '/clientcertificates',
    body: JSON.stringify({ description: 'a\u0000b' }),
    status: 400,
    type: 'BadRequestException',
    message: 'description must not contain control characters',
  },
  {
    name: 'escape sequence in the description',
    method: 'POST',
    path: '/clientcertificates',
    body: JSON.stringify({ description: '\u001b[31mred' }),
    status: 400,
    type: 'BadRequestException',
    message: 'description must not contain control characters',
  },
  {
    name: 'control character in a tag key',
    method: 'POST',
    path: '/clientcertificates',
    body: JSON.stringify({ tags: { 'a\u0001': 'v' } }),
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: 'control character in a tag value',
    method: 'POST',
    path: '/clientcertificates',
    body: JSON.stringify({ tags: { a: 'v\u0007' } }),
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: '..%2F in an id',
    method: 'GET',
    path: '/clientcertificates/..%2F..%2Fetc%2Fpasswd',
    status: 404,
    type: 'NotFoundException',
  },
  {
    name: '..%2F in an id (delete)',
    method: 'DELETE',
    path: '/clientcertificates/..%2Findex',
    status: 404,
    type: 'NotFoundException',
  },
  {
    name: '%00 in an id',
    method: 'GET',
    path: '/clientcertificates/%00',
    status: 404,
    type: 'NotFoundException',
  },
  {
    name: 'Redis glob characters in an id',
    method: 'GET',
    path: '/clientcertificates/*',
    status: 404,
    type: 'NotFoundException',
  },
  {
    name: 'hash-tag braces in an id',
    method: 'GET',
    path: '/clientcertificates/%7Bx%7D',
    status: 404,
    type: 'NotFoundException',
  },
  {
    name: 'unknown method on the collection',
    method: 'PUT',
    path: '/clientcertificates',
    body: '{}',
    status: 405,
    type: 'MethodNotAllowedException',
  },
  {
    name: 'WebDAV method',
    method: 'PROPFIND',
    path: '/clientcertificates',
    status: 405,
    type: 'MethodNotAllowedException',
  },
  {
    name: 'OPTIONS',
    method: 'OPTIONS',
    path: '/clientcertificates',
    status: 405,
    type: 'MethodNotAllowedException',
  },
  { name: 'unknown path', method: 'GET', path: '/etc/passwd', status: 404, type: 'NotFoundException' },
  {
    name: 'too many segments',
    method: 'GET',
    path: '/clientcertificates/a/b/c',
    status: 404,
    type: 'NotFoundException',
  },
];

const ARN = 'arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fclientcertificates%2F{id}';
const BAD_LIMIT = (v: string) =>
  `Invalid limit ${JSON.stringify(v)}: limit must be a whole number from 1 to 500`;
const BAD_ARN = /^Invalid ARN specified in the request: /;

/** Cases on the family's routes; `{id}` is a real certificate of the caller, made before the table runs. */
const FAMILY_CASES: Case[] = [
  {
    name: 'limit not a number',
    method: 'GET',
    path: '/clientcertificates?limit=abc',
    status: 400,
    type: 'BadRequestException',
    message: BAD_LIMIT('abc'),
  },
  {
    name: 'limit zero',
    method: 'GET',
    path: '/clientcertificates?limit=0',
    status: 400,
    type: 'BadRequestException',
    message: BAD_LIMIT('0'),
  },
  {
    name: 'limit too big',
    method: 'GET',
    path: '/clientcertificates?limit=100000',
    status: 400,
    type: 'BadRequestException',
    message: BAD_LIMIT('100000'),
  },
  {
    name: 'limit negative',
    method: 'GET',
    path: '/clientcertificates?limit=-1',
    status: 400,
    type: 'BadRequestException',
    message: BAD_LIMIT('-1'),
  },
  {
    name: 'limit with an exponent',
    method: 'GET',
    path: '/clientcertificates?limit=1e3',
    status: 400,
    type: 'BadRequestException',
    message: BAD_LIMIT('1e3'),
  },
  {
    name: 'position garbage',
    method: 'GET',
    path: '/clientcertificates?position=%F0%9F%92%A9%00%0A..%2F%22',
    status: 400,
    type: 'BadRequestException',
    message: /^Invalid position/,
  },
  {
    name: 'position of 10 KB',
    method: 'GET',
    path: `/clientcertificates?position=${'A'.repeat(10_000)}`,
    status: 400,
    type: 'BadRequestException',
    message: /^Invalid position/,
  },
  {
    name: 'malformed ARN',
    method: 'GET',
    path: '/tags/notanarn',
    status: 400,
    type: 'BadRequestException',
    message: BAD_ARN,
  },
  {
    name: 'ARN of another service',
    method: 'GET',
    path: '/tags/arn%3Aaws%3As3%3A%3A%3Abucket',
    status: 400,
    type: 'BadRequestException',
    message: BAD_ARN,
  },
  {
    name: 'ARN of another region',
    method: 'GET',
    path: '/tags/arn%3Aaws%3Aapigateway%3Aeu-west-1%3A%3A%2Fclientcertificates%2F{id}',
    status: 400,
    type: 'BadRequestException',
    message: BAD_ARN,
  },
  {
    name: 'ARN with ..%2F',
    method: 'PUT',
    path: '/tags/arn%3Aaws%3Aapigateway%3Aus-east-1%3A%3A%2Fclientcertificates%2F..%2F..',
    body: '{"tags":{"a":"b"}}',
    status: 400,
    type: 'BadRequestException',
    message: BAD_ARN,
  },
  {
    name: 'ARN of 10 KB',
    method: 'GET',
    path: `/tags/${'arn%3A'.repeat(2000)}`,
    status: 400,
    type: 'BadRequestException',
    message: BAD_ARN,
  },
  {
    name: 'patch with an unknown op',
    method: 'PATCH',
    path: '/clientcertificates/{id}',
    body: '{"patchOperations":[{"op":"explode"}]}',
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: 'patch of a read-only path',
    method: 'PATCH',
    path: '/clientcertificates/{id}',
    body: '{"patchOperations":[{"op":"replace","path":"/pemEncodedCertificate","value":"x"}]}',
    status: 400,
    type: 'BadRequestException',
    // AWS's words: docs/aws-behaviour.md, "Update (patch)".
    message: /Invalid patch path/,
  },
  {
    name: 'patchOperations not a list',
    method: 'PATCH',
    path: '/clientcertificates/{id}',
    body: '{"patchOperations":"x"}',
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: 'patch body not an object',
    method: 'PATCH',
    path: '/clientcertificates/{id}',
    body: '[]',
    status: 400,
    type: 'BadRequestException',
    message: 'Request body must be a JSON object',
  },
  {
    name: 'patch with a control character',
    method: 'PATCH',
    path: '/clientcertificates/{id}',
    body: JSON.stringify({ patchOperations: [{ op: 'replace', path: '/description', value: 'x\u0000' }] }),
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: 'TagResource with 60 tags',
    method: 'PUT',
    path: `/tags/${ARN}`,
    body: tags(60),
    status: 400,
    type: 'BadRequestException',
    message: 'tags must have at most 50 tags, got 60',
  },
  {
    name: 'TagResource with tags as a string',
    method: 'PUT',
    path: `/tags/${ARN}`,
    body: '{"tags":"a=b"}',
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: 'TagResource without tags',
    method: 'PUT',
    path: `/tags/${ARN}`,
    body: '{}',
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: 'UntagResource without tagKeys',
    method: 'DELETE',
    path: `/tags/${ARN}`,
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: 'UntagResource of an aws: key',
    method: 'DELETE',
    path: `/tags/${ARN}?tagKeys=aws%3Ax`,
    status: 400,
    type: 'BadRequestException',
  },
  {
    name: 'a well-formed id that does not exist',
    method: 'GET',
    path: '/clientcertificates/zzzzzz',
    status: 404,
    type: 'NotFoundException',
    // AWS's words: docs/aws-behaviour.md, "Errors".
    message: 'Invalid Client Certificate identifier specified',
  },
];

async function send(
  url: string,
  c: { method: string; path: string; body?: string | Uint8Array; chunked?: boolean },
) {
  const { url: u, init } = await signRequest(url, c.path, { method: c.method, body: c.body });
  const signal = AbortSignal.timeout(30_000); // a hang fails the test instead of stalling it
  if (c.chunked && c.body !== undefined) {
    const bytes = typeof c.body === 'string' ? new TextEncoder().encode(c.body) : c.body;
    const stream = new ReadableStream({
      start(ctrl) {
        for (let i = 0; i < bytes.length; i += 8192) ctrl.enqueue(bytes.subarray(i, i + 8192));
        ctrl.close();
      },
    });
    return fetch(u, { ...init, body: stream, signal, duplex: 'half' } as RequestInit);
  }
  return fetch(u, { ...init, signal }).catch((err: Error) => {
    throw new Error(`fetch failed: ${String((err.cause as Error | undefined)?.message ?? err)}`);
  });
}

async function assertAwsError(res: Response) {
  const text = await res.text();
  assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}: ${text}`);
  const type = res.headers.get('x-amzn-errortype');
  assert.ok(type && /^[A-Za-z]+Exception$/.test(type), `x-amzn-errortype ${type}`);
  const body = JSON.parse(text) as { message: unknown };
  assert.equal(typeof body.message, 'string');
  return { type, message: body.message as string };
}

describe('hostile input', () => {
  const fx = useService();
  let id: string;
  before(async () => {
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates', {
      method: 'POST',
      body: '{"description":"target","tags":{"keep":"me"}}',
    });
    assert.equal(res.status, 201);
    id = ((await res.json()) as { clientCertificateId: string }).clientCertificateId;
  });

  for (const c of [...CASES, ...FAMILY_CASES]) {
    it(`${c.name}: ${c.status} ${c.type}`, async () => {
      const res = await send(fx.svc.api.url, { ...c, path: c.path.replaceAll('{id}', id) });
      const { type, message } = await assertAwsError(res);
      assert.equal(res.status, c.status, message);
      assert.equal(type, c.type);
      if (typeof c.message === 'string') assert.equal(message, c.message);
      else if (c.message) assert.match(message, c.message);
    });
  }

  it('a junk Authorization header of 8 KB is a 403, not a crash', async () => {
    const res = await fetch(`${fx.svc.api.url}/clientcertificates`, {
      headers: { authorization: `AWS4-HMAC-SHA256 ${'Credential=a/b/c,'.repeat(480)}` },
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(res.status, 403);
    await assertAwsError(res);
  });

  it('still answers afterwards; the target certificate is unchanged and nothing else was created', async () => {
    assert.equal((await fetch(`${fx.svc.api.url}/health`)).status, 200);
    const got = await signedFetch(fx.svc.api.url, `/clientcertificates/${id}`);
    assert.equal(got.status, 200);
    const cert = (await got.json()) as { description: string; tags: Record<string, string> };
    assert.equal(cert.description, 'target');
    assert.deepEqual(cert.tags, { keep: 'me' });
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates', {
      method: 'POST',
      body: '{"description":"still here"}',
    });
    assert.equal(res.status, 201);
    assert.equal(
      await fx.svc.redis.zcard(fx.svc.keys.index({ accountId: '000000000000', region: 'us-east-1' })),
      2,
    );
    assert.ok(!fx.svc.logs.lines.some((l) => JSON.parse(l).level >= 50), 'an error was logged');
  });
});
