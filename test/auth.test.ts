import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { GenerateClientCertificateCommand } from '@aws-sdk/client-api-gateway';
import { getSigningKey } from '@smithy/signature-v4';
import { deriveSigningKey, SigV4Verifier } from '../api/auth/sigv4.js';
import { CredentialStore } from '../api/auth/credentials.js';
import { NodeSha256 } from '../api/auth/sha256.js';
import { InvalidSignatureError } from '../shared/errors.js';
import { useService } from './helpers/fixture.js';
import { signRequest, signedFetch } from '../devtools/signed-fetch.js';
import { hasTool, runTool } from '../devtools/aws-client.js';
import { awsClient } from '../devtools/aws-client.js';

const MISMATCH =
  // AWS's words: docs/aws-behaviour.md, "Authentication".
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

async function expectError(res: Response, status: number, type: string, message?: string | RegExp) {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get('x-amzn-errortype'), type);
  const body = JSON.parse(text) as { message: string };
  if (typeof message === 'string') assert.equal(body.message, message);
  else if (message) assert.match(body.message, message);
  return body.message;
}

describe('SigV4 signing key', () => {
  it('derives the key the AWS SDK derives, for any day, region and service', async () => {
    for (const [date, region, service] of [
      ['20261129', 'us-east-1', 'apigateway'],
      ['20270101', 'eu-west-1', 'apigateway'],
      ['20261129', 'ap-southeast-2', 's3'],
    ] as const) {
      const theirs = await getSigningKey(
        NodeSha256,
        { accessKeyId: 'AKID', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
        date,
        region,
        service,
      );
      const ours = deriveSigningKey('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', date, region, service);
      assert.equal(ours.toString('hex'), Buffer.from(theirs).toString('hex'));
    }
  });

  it('keeps keys per credential: a replaced secret never verifies with the old key', async () => {
    const store = (secret: string) =>
      new CredentialStore([
        { accessKeyId: 'AK', secretAccessKey: secret, accountId: '111111111111', allow: ['apigateway:*'] },
      ]);
    const signed = async (secret: string, date = new Date()) => {
      const { url: u, init } = await signRequest('http://127.0.0.1:1', '/clientcertificates', {
        accessKeyId: 'AK',
        secretAccessKey: secret,
        date,
      });
      const headers = new Headers(init.headers);
      headers.set('host', '127.0.0.1:1'); // fetch would add it; the signature covers it
      return { method: 'GET', url: new URL(u), headers, body: async () => new Uint8Array(0) };
    };
    const first = new SigV4Verifier(store('old-secret'));
    assert.equal((await first.verify(await signed('old-secret'))).accountId, '111111111111');
    // The same access key with a new secret: the old signature fails, the new one passes.
    const second = new SigV4Verifier(store('new-secret'));
    await assert.rejects(second.verify(await signed('old-secret')), InvalidSignatureError);
    assert.equal((await second.verify(await signed('new-secret'))).accountId, '111111111111');
    // One verifier across 40 days (more than the keys it keeps per credential): each day's key is right.
    let now = Date.now();
    const v = new SigV4Verifier(store('s'), { now: () => now });
    for (let day = 0; day < 40; day++) {
      const date = new Date(Date.UTC(2026, 0, 1 + day, 12));
      now = date.getTime();
      assert.equal((await v.verify(await signed('s', date))).region, 'us-east-1');
      await assert.rejects(v.verify(await signed('t', date)), InvalidSignatureError);
    }
  });
});

describe('SigV4 authentication', () => {
  const fx = useService({
    credentials: [
      { accessKeyId: 'test', secretAccessKey: 'test', accountId: '000000000000', allow: ['apigateway:*'] },
      {
        accessKeyId: 'READONLY',
        secretAccessKey: 'ro-secret',
        accountId: '333333333333',
        allow: ['apigateway:GET'],
      },
    ],
  });
  let url: string;

  before(() => {
    url = fx.svc.api.url;
  });

  it('answers /health without a signature', async () => {
    const res = await fetch(`${url}/health`);
    assert.equal(res.status, 200);
  });

  it('rejects a request without Authorization as MissingAuthenticationTokenException', async () => {
    const res = await fetch(`${url}/clientcertificates`, { method: 'POST', body: '{}' });
    // AWS's words: docs/aws-behaviour.md, "Authentication".
    await expectError(res, 403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  });

  it('rejects an unsigned request to an unknown path the same way (routes are not revealed)', async () => {
    const res = await fetch(`${url}/no/such/thing`);
    // AWS's words: docs/aws-behaviour.md, "Authentication".
    await expectError(res, 403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
  });

  it('rejects an unknown access key as UnrecognizedClientException', async () => {
    const res = await signedFetch(url, '/clientcertificates', {
      method: 'POST',
      body: '{}',
      accessKeyId: 'AKIDUNKNOWN',
    });
    await expectError(
      res,
      403,
      'UnrecognizedClientException',
      // AWS's words: docs/aws-behaviour.md, "Authentication".
      'The security token included in the request is invalid.',
    );
  });

  it('rejects a wrong secret as InvalidSignatureException with the canonical request to compare', async () => {
    const res = await signedFetch(url, '/clientcertificates', {
      method: 'POST',
      body: '{}',
      secretAccessKey: 'wrong',
    });
    const msg = await expectError(res, 403, 'InvalidSignatureException');
    assert.ok(msg.startsWith(MISMATCH), msg);
    assert.match(
      msg,
      /The Canonical String for this request should have been\n'POST\n\/clientcertificates\n/,
    );
  });

  it('rejects a body changed after signing when x-amz-content-sha256 was sent (AWS SDK style)', async () => {
    const { url: u, init } = await signRequest(url, '/clientcertificates', {
      method: 'POST',
      body: '{"description":"a"}',
    });
    const res = await fetch(u, { ...init, body: '{"description":"b"}' });
    await expectError(
      res,
      403,
      'InvalidSignatureException',
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
  });

  it('rejects a body changed after signing when no payload hash header was sent (botocore style)', async () => {
    const { url: u, init } = await signRequest(url, '/clientcertificates', {
      method: 'POST',
      body: '{"description":"a"}',
      contentSha256Header: false,
    });
    assert.equal(init.headers['x-amz-content-sha256'], undefined);
    const res = await fetch(u, { ...init, body: '{"description":"b"}' });
    const msg = await expectError(res, 403, 'InvalidSignatureException');
    assert.ok(msg.startsWith(MISMATCH), msg);
  });

  it('accepts a botocore-style request without x-amz-content-sha256', async () => {
    const res = await signedFetch(url, '/clientcertificates', {
      method: 'POST',
      body: '{"description":"no payload header"}',
      contentSha256Header: false,
    });
    assert.equal(res.status, 201, await res.clone().text());
    const body = (await res.json()) as { description: string };
    assert.equal(body.description, 'no payload header');
  });

  it('rejects a signed header changed after signing', async () => {
    const { url: u, init } = await signRequest(url, '/clientcertificates', {
      method: 'POST',
      body: '{}',
      headers: { 'x-custom': 'one' },
    });
    const res = await fetch(u, { ...init, headers: { ...init.headers, 'x-custom': 'two' } });
    const msg = await expectError(res, 403, 'InvalidSignatureException');
    assert.ok(msg.startsWith(MISMATCH), msg);
  });

  it('rejects a path changed after signing', async () => {
    const { init } = await signRequest(url, '/clientcertificates', { method: 'POST', body: '{}' });
    const res = await fetch(`${url}/clientcertificates/abc`, init);
    const msg = await expectError(res, 403, 'InvalidSignatureException');
    assert.ok(msg.startsWith(MISMATCH), msg);
  });

  it('rejects a request signed more than 15 minutes ago with "Signature expired"', async () => {
    const date = new Date(Date.now() - 20 * 60_000);
    const res = await signedFetch(url, '/clientcertificates', { method: 'POST', body: '{}', date });
    await expectError(
      res,
      403,
      'InvalidSignatureException',
      // AWS's words: docs/aws-behaviour.md, "Authentication".
      /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$/,
    );
  });

  it('rejects a request dated more than 15 minutes ahead', async () => {
    const date = new Date(Date.now() + 20 * 60_000);
    const res = await signedFetch(url, '/clientcertificates', { method: 'POST', body: '{}', date });
    // AWS's words: docs/aws-behaviour.md, "Authentication".
    await expectError(res, 403, 'InvalidSignatureException', /^Signature not yet current: /);
  });

  it('signs every answer, success or error, with an x-amzn-RequestId of its own', async () => {
    const ok = await signedFetch(url, '/clientcertificates');
    const missing = await signedFetch(url, '/clientcertificates/nosuchid');
    const unsigned = await fetch(`${url}/clientcertificates`);
    const ids = [ok, missing, unsigned].map((r) => r.headers.get('x-amzn-requestid'));
    assert.deepEqual([ok.status, missing.status, unsigned.status], [200, 404, 403]);
    for (const id of ids) assert.match(id ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(new Set(ids).size, 3);
  });

  it('accepts a request signed 10 minutes ago (inside the window)', async () => {
    const date = new Date(Date.now() - 10 * 60_000);
    const res = await signedFetch(url, '/clientcertificates/nosuchid', { date });
    assert.equal(res.status, 404, await res.text());
  });

  it('requires host among the signed headers', async () => {
    const res = await signedFetch(url, '/clientcertificates', { method: 'POST', body: '{}', omitHost: true });
    await expectError(
      res,
      403,
      'InvalidSignatureException',
      "'Host' must be a 'SignedHeader' in the AWS Authorization.",
    );
  });

  it('requires x-amz-date among the signed headers', async () => {
    const { url: u, init } = await signRequest(url, '/clientcertificates', { method: 'POST', body: '{}' });
    const auth = init.headers['authorization']!.replace(';x-amz-date', '');
    const res = await fetch(u, { ...init, headers: { ...init.headers, authorization: auth } });
    await expectError(
      res,
      403,
      'InvalidSignatureException',
      "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.",
    );
  });

  it('requires the signature to be scoped to apigateway and a real region', async () => {
    let res = await signedFetch(url, '/clientcertificates', { method: 'POST', body: '{}', service: 's3' });
    await expectError(
      res,
      403,
      'InvalidSignatureException',
      // AWS's words: docs/aws-behaviour.md, "Authentication".
      "Credential should be scoped to correct service: 'apigateway'. ",
    );
    res = await signedFetch(url, '/clientcertificates', { method: 'POST', body: '{}', region: 'moon}:x' });
    await expectError(
      res,
      403,
      'InvalidSignatureException',
      // AWS's words: docs/aws-behaviour.md, "Regions".
      /^Credential should be scoped to a valid region/,
    );
  });

  it('rejects a malformed Authorization header as IncompleteSignatureException', async () => {
    let res = await fetch(`${url}/clientcertificates`, { headers: { authorization: 'Bearer abc' } });
    await expectError(res, 403, 'IncompleteSignatureException', /AWS4-HMAC-SHA256/);
    res = await fetch(`${url}/clientcertificates`, {
      headers: {
        authorization: 'AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/apigateway/aws4_request',
      },
    });
    await expectError(
      res,
      403,
      'IncompleteSignatureException',
      "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of a 'X-Amz-Date' header.",
    );
  });

  it('compares signatures of another length without throwing', async () => {
    const { url: u, init } = await signRequest(url, '/clientcertificates', { method: 'POST', body: '{}' });
    const auth = init.headers['authorization']!.replace(/Signature=[0-9a-f]+/, 'Signature=abc');
    const res = await fetch(u, { ...init, headers: { ...init.headers, authorization: auth } });
    const msg = await expectError(res, 403, 'InvalidSignatureException');
    assert.ok(msg.startsWith(MISMATCH));
  });

  it('accepts a presigned URL and rejects an expired one', async () => {
    let res = await signedFetch(url, '/clientcertificates/nosuchid', { presignExpiresIn: 60 });
    assert.equal(res.status, 404, await res.clone().text());
    assert.equal(res.headers.get('x-amzn-errortype'), 'NotFoundException');
    res = await signedFetch(url, '/clientcertificates/nosuchid', {
      presignExpiresIn: 60,
      date: new Date(Date.now() - 5 * 60_000),
    });
    // AWS's words: docs/aws-behaviour.md, "Authentication".
    await expectError(res, 403, 'InvalidSignatureException', /^Signature expired: .* - 60 sec\.\)$/);
    const { url: u } = await signRequest(url, '/clientcertificates/nosuchid', { presignExpiresIn: 60 });
    res = await fetch(u.replace('nosuchid', 'otherid'));
    const msg = await expectError(res, 403, 'InvalidSignatureException');
    assert.ok(msg.startsWith(MISMATCH));
  });

  it('answers 401 UnauthorizedException when the credential does not allow the action', async () => {
    const res = await signedFetch(url, '/clientcertificates', {
      method: 'POST',
      body: '{}',
      accessKeyId: 'READONLY',
      secretAccessKey: 'ro-secret',
    });
    await expectError(
      res,
      401,
      'UnauthorizedException',
      'User: READONLY (account 333333333333) is not authorized to perform: apigateway:POST on resource: arn:aws:apigateway:us-east-1::/clientcertificates',
    );
    // The same credential may GET.
    const get = await signedFetch(url, '/clientcertificates/nosuchid', {
      accessKeyId: 'READONLY',
      secretAccessKey: 'ro-secret',
    });
    assert.equal(get.status, 404);
  });

  it('takes the region from the credential scope: the AWS SDK in eu-west-1 stores under eu-west-1', async () => {
    const client = awsClient(url, { region: 'eu-west-1' });
    const out = await client.send(new GenerateClientCertificateCommand({ description: 'sdk eu' }));
    const id = out.clientCertificateId!;
    assert.ok(
      await fx.svc.redis.exists(
        fx.svc.keys.certificate({ accountId: '000000000000', region: 'eu-west-1' }, id),
      ),
    );
    assert.equal(
      await fx.svc.redis.exists(
        fx.svc.keys.certificate({ accountId: '000000000000', region: 'us-east-1' }, id),
      ),
      0,
    );
  });

  it('the AWS SDK with a wrong secret gets InvalidSignatureException', async () => {
    const client = awsClient(url, { secretAccessKey: 'nope' });
    await assert.rejects(
      client.send(new GenerateClientCertificateCommand({})),
      (err: Error & { $metadata?: { httpStatusCode?: number } }) => {
        assert.equal(err.name, 'InvalidSignatureException');
        assert.equal(err.$metadata?.httpStatusCode, 403);
        return true;
      },
    );
  });

  it('verifies requests signed by the AWS CLI: generate, tags by double-encoded ARN, repeated query keys, list', async (t) => {
    if (!(await hasTool('aws', ['--version']))) return t.skip('aws CLI not installed');
    const gen = await runTool(
      'aws',
      [
        'apigateway',
        'generate-client-certificate',
        '--endpoint-url',
        url,
        '--description',
        'from the CLI',
        '--tags',
        'team=a b,env=dev',
      ],
      { region: 'ap-southeast-2' },
    );
    assert.equal(gen.code, 0, gen.stderr);
    const out = JSON.parse(gen.stdout) as {
      clientCertificateId: string;
      description: string;
      tags: Record<string, string>;
    };
    assert.equal(out.description, 'from the CLI');
    assert.deepEqual(out.tags, { team: 'a b', env: 'dev' });
    assert.ok(
      await fx.svc.redis.exists(
        fx.svc.keys.certificate(
          { accountId: '000000000000', region: 'ap-southeast-2' },
          out.clientCertificateId,
        ),
      ),
    );
    // The ARN's ':' and '/' arrive percent-encoded in the path and are signed encoded twice.
    const region = { region: 'ap-southeast-2' };
    const arn = `arn:aws:apigateway:ap-southeast-2::/clientcertificates/${out.clientCertificateId}`;
    const tag = await runTool(
      'aws',
      ['apigateway', 'tag-resource', '--endpoint-url', url, '--resource-arn', arn, '--tags', 'extra=x+y z'],
      region,
    );
    assert.equal(tag.code, 0, tag.stderr);
    const tags = await runTool(
      'aws',
      ['apigateway', 'get-tags', '--endpoint-url', url, '--resource-arn', arn],
      region,
    );
    assert.equal(tags.code, 0, tags.stderr);
    assert.deepEqual(JSON.parse(tags.stdout), { tags: { team: 'a b', env: 'dev', extra: 'x+y z' } });
    // Repeated query keys (tagKeys=a&tagKeys=b) are sorted and signed like the CLI does.
    const untag = await runTool(
      'aws',
      [
        'apigateway',
        'untag-resource',
        '--endpoint-url',
        url,
        '--resource-arn',
        arn,
        '--tag-keys',
        'team',
        'extra',
      ],
      region,
    );
    assert.equal(untag.code, 0, untag.stderr);
    const list = await runTool(
      'aws',
      ['apigateway', 'get-client-certificates', '--endpoint-url', url, '--limit', '1'],
      region,
    );
    assert.equal(list.code, 0, list.stderr);
    const items = (JSON.parse(list.stdout) as { items: { clientCertificateId: string; tags: unknown }[] })
      .items;
    assert.equal(items[0]?.clientCertificateId, out.clientCertificateId);
    assert.deepEqual(items[0]?.tags, { env: 'dev' });
    const bad = await runTool('aws', ['apigateway', 'generate-client-certificate', '--endpoint-url', url], {
      secretAccessKey: 'wrong',
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /InvalidSignatureException/);
  });

  it('verifies requests signed by boto3 (no x-amz-content-sha256): every operation, values with + and spaces, a presigned URL', async (t) => {
    if (!(await hasTool('python3', ['-c', 'import boto3']))) return t.skip('boto3 not installed');
    const py = `
import json, sys, boto3, botocore
def client(secret):
    return boto3.client('apigateway', endpoint_url=sys.argv[1], region_name='sa-east-1',
        aws_access_key_id='test', aws_secret_access_key=secret,
        config=botocore.config.Config(retries={'max_attempts': 1}))
c = client('test')
out = {'generated': c.generate_client_certificate(description='from boto3', tags={'k': 'v'})}
def err(f):
    try:
        f()
        return 'ok'
    except botocore.exceptions.ClientError as e:
        return e.response['Error']['Code']
cid = out['generated']['clientCertificateId']
arn = 'arn:aws:apigateway:sa-east-1::/clientcertificates/' + cid
c.tag_resource(resourceArn=arn, tags={'plus': 'a+b', 'space': 'c d', 'slash': 'e/f=g'})
c.untag_resource(resourceArn=arn, tagKeys=['k', 'space'])
out['tags'] = c.get_tags(resourceArn=arn)['tags']
out['updated'] = c.update_client_certificate(clientCertificateId=cid, patchOperations=[
    {'op': 'replace', 'path': '/description', 'value': 'new: a+b c/d'}])['description']
page = c.get_client_certificates(limit=1)
out['listed'] = [i['clientCertificateId'] for i in page['items']]
out['presigned'] = c.generate_presigned_url('get_client_certificate', Params={'clientCertificateId': cid}, ExpiresIn=60)
out['missing'] = err(lambda: c.get_tags(resourceArn='arn:aws:apigateway:sa-east-1::/clientcertificates/zz0000'))
out['bad'] = err(lambda: client('wrong').generate_client_certificate())
print(json.dumps(out, default=str))
`;
    const r = await runTool('python3', ['-c', py, url]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      generated: { clientCertificateId: string; description: string };
      tags: Record<string, string>;
      updated: string;
      listed: string[];
      missing: string;
      bad: string;
      presigned: string;
    };
    assert.equal(out.generated.description, 'from boto3');
    assert.ok(
      await fx.svc.redis.exists(
        fx.svc.keys.certificate(
          { accountId: '000000000000', region: 'sa-east-1' },
          out.generated.clientCertificateId,
        ),
      ),
    );
    assert.deepEqual(out.tags, { plus: 'a+b', slash: 'e/f=g' });
    assert.equal(out.updated, 'new: a+b c/d');
    assert.deepEqual(out.listed, [out.generated.clientCertificateId]);
    assert.equal(out.missing, 'NotFoundException');
    // botocore's presigned URL: query-string auth, UNSIGNED-PAYLOAD, signed host only.
    assert.match(out.presigned, /X-Amz-Signature=[0-9a-f]{64}/);
    const presigned = await fetch(out.presigned);
    assert.equal(presigned.status, 200);
    assert.equal(((await presigned.json()) as { description: string }).description, 'new: a+b c/d');
    const tampered = await fetch(out.presigned.replace('X-Amz-Expires=60', 'X-Amz-Expires=600'));
    assert.equal(tampered.status, 403);
    assert.equal(out.bad, 'InvalidSignatureException');
  });
});
