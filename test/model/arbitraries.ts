/**
 * fast-check arbitraries for the conformance commands: mostly valid requests on a few tenants (so state
 * builds up and later steps meet it), mixed with hostile ones: unicode, boundary lengths, odd keys, bad ids,
 * foreign ARNs, forged positions, bad patches and malformed JSON, other accounts, regions and signers.
 */
import fc from 'fast-check';
import {
  CREDENTIALS,
  FAKE_REGIONS,
  REAL_REGIONS,
  StepCommand,
  json,
  obj,
  type ArnRef,
  type CallerRef,
  type IdRef,
  type JVal,
  type PosRef,
  type Step,
  type Switches,
} from './conformance.js';

/** A letter outside the BMP: one character, two UTF-16 code units. */
const ASTRAL = '\u{1D49C}';

export function arbitraries(sw: Switches) {
  const region = fc.oneof(
    { weight: 8, arbitrary: fc.constant('us-east-1') },
    { weight: 3, arbitrary: fc.constantFrom(...REAL_REGIONS) },
    ...(sw.fakeRegions ? [{ weight: 1, arbitrary: fc.constantFrom(...FAKE_REGIONS) }] : []),
  );
  const caller: fc.Arbitrary<CallerRef> = fc.oneof(
    { weight: 12, arbitrary: fc.constant({ cred: 0, region: 'us-east-1' }) },
    { weight: 6, arbitrary: fc.record({ cred: fc.nat(CREDENTIALS.length - 1), region }) },
    {
      weight: 1,
      arbitrary: fc.record({
        hostile: fc.constantFrom('unknown-key' as const, 'wrong-secret' as const),
        region,
      }),
    },
  );

  const oddKeys = [
    'constructor',
    'toString',
    'hasOwnProperty',
    'valueOf',
    ...(sw.protoKeys ? ['__proto__'] : []),
  ];
  const tagKey = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('a', 'b', 'team', 'env', 'k0', 'Name') },
    { weight: 3, arbitrary: fc.constantFrom(...oddKeys) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'team name+-=._:/@',
        'Ünïcödé',
        '日本語',
        ASTRAL,
        'e\u0301',
        'aws:x',
        'AWS:cost',
        'Aws:',
        'awsx',
        'aws',
        '',
        'a*b',
        'semi;colon',
        'q"uote',
        'tab\t',
        'new\nline',
        '\u0000',
        '\u{1F600}',
        ' ',
        'k'.repeat(128),
        'k'.repeat(129),
        ASTRAL.repeat(128),
        ASTRAL.repeat(129),
        'x'.repeat(41),
      ),
    },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  );
  const tagValue = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('', 'v', 'payments', 'prod', 'a b/c:d=e+f-g_h.i@j') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'v'.repeat(256),
        'v'.repeat(257),
        ASTRAL.repeat(256),
        ASTRAL.repeat(129),
        'a#b',
        'v\u0007',
        'é',
        '\u{1F600}',
        'line\nbreak',
        'para\u2029graph',
        'line\u2028sep',
        'nbsp\u00a0',
      ),
    },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  );
  const tagEntries = fc.oneof(
    { weight: 6, arbitrary: fc.array(fc.tuple(tagKey, tagValue), { maxLength: 4 }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 45, max: 52 }), fc.nat(3))
        .map(([n, off]) => Array.from({ length: n }, (_, i): [string, string] => [`k${i + off}`, 'v'])),
    },
  );
  const tags: fc.Arbitrary<JVal> = tagEntries.map((e) => obj(e));

  const description = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('cert', 'orders backend', '', 'línea 1\nline\t2\r') },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        'd'.repeat(1024),
        'd'.repeat(1025),
        ASTRAL.repeat(1024),
        ASTRAL.repeat(513),
        'a\u0000b',
        '\u001b[31mred',
        'next\u0085line',
        'sep\u2028arator',
        '\u007f',
        '<script>',
        '{"json":1}',
      ),
    },
    { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
  );

  /** A body object with optional members, sometimes an unknown field too. */
  const body = (members: Record<string, fc.Arbitrary<JVal>>) =>
    fc
      .tuple(
        ...Object.entries(members).map(([k, a]) =>
          fc.option(a, { nil: undefined }).map((v) => [k, v] as const),
        ),
        fc.option(fc.constantFrom<[string, JVal]>(['unknownField', 1], ['extra', 'x']), {
          nil: undefined,
          freq: 6,
        }),
      )
      .map((parts) => {
        const entries = parts.filter((p): p is [string, JVal] => p !== undefined && p[1] !== undefined);
        return json(obj(entries as [string, JVal][]));
      });

  const badJson = fc.constantFrom<string | Uint8Array>(
    '{"description":',
    '[]',
    '"text"',
    '42',
    'null',
    'true',
    '{',
    '{"a":1,}',
    new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
    `${'['.repeat(3000)}${']'.repeat(3000)}`,
  );

  // Requests that succeed, so sequences build up certificates for later steps (and pages for positions).
  const cleanTags = fc
    .array(fc.tuple(fc.constantFrom('a', 'team', 'env', 'constructor'), fc.constantFrom('', 'v', 'prod')), {
      maxLength: 3,
    })
    .map((e): JVal => obj(e));
  const generateBody = fc.oneof(
    { weight: 8, arbitrary: body({ description: fc.constantFrom('cert', ''), tags: cleanTags }) },
    { weight: 10, arbitrary: body({ description, tags }) },
    { weight: 1, arbitrary: fc.constant('') },
    { weight: 1, arbitrary: badJson },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '{"description":5}',
        '{"description":null}',
        '{"description":["a"]}',
        '{"tags":["a"]}',
        '{"tags":"a=b"}',
        '{"tags":null}',
        '{"tags":{"a":1}}',
        '{"tags":{"a":null}}',
        '{"tags":{"__proto__":{"x":"y"}}}',
        '{"tags":{"a":"1","a":"2"}}',
        '{"description":"a","description":"b"}',
        `{"description":"${'a'.repeat(70_000)}"}`,
      ),
    },
  );

  const patchOp = fc
    .record({
      op: fc.oneof(
        { weight: 8, arbitrary: fc.constant('replace') },
        {
          weight: 2,
          arbitrary: fc.constantFrom('add', 'remove', 'move', 'test', 'copy', 'frobnicate', 'REPLACE', ''),
        },
      ),
      path: fc.oneof(
        { weight: 8, arbitrary: fc.constant('/description') },
        {
          weight: 2,
          arbitrary: fc.constantFrom('/pemEncodedCertificate', '/tags/a', '/name', '', '/Description'),
        },
      ),
      value: fc.option(description, { nil: undefined, freq: 6 }),
    })
    .map((p): JVal => obj(Object.entries(p).filter(([, v]) => v !== undefined) as [string, JVal][]));
  const updateBody = fc.oneof(
    {
      weight: 10,
      arbitrary: fc.array(patchOp, { maxLength: 3 }).map((ops) => json(obj([['patchOperations', ops]]))),
    },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '{}',
        '',
        '{"patchOperations":[]}',
        '{"patchOperations":"x"}',
        '{"patchOperations":[1]}',
        '{"patchOperations":[{"op":5,"path":"/description"}]}',
        '{"patchOperations":[{"op":"replace","path":"/description","value":5}]}',
      ),
    },
    { weight: 1, arbitrary: badJson },
  );

  const tagBody = fc.oneof(
    { weight: 10, arbitrary: tags.map((t) => json(obj([['tags', t]]))) },
    {
      weight: 2,
      arbitrary: fc.constantFrom('{}', '', '{"tags":"a=b"}', '{"tags":null}', '{"tags":[]}', '{"tags":{}}'),
    },
    { weight: 1, arbitrary: badJson },
  );

  const id: fc.Arbitrary<IdRef> = fc.oneof(
    { weight: 10, arbitrary: fc.nat().map((n) => ({ own: n })) },
    { weight: 2, arbitrary: fc.nat().map((n) => ({ any: n })) },
    { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9]{6}$/).map((lit) => ({ lit })) },
    {
      weight: 2,
      arbitrary: fc
        .oneof(
          fc.constantFrom(
            'ABCDEF',
            'abc12',
            'abc1234',
            '*',
            '%',
            '{x}',
            'a b',
            'ü',
            '%00',
            'abc123:tags',
            'a/b',
          ),
          fc.string({ minLength: 1, maxLength: 10 }).filter((s) => s !== '.' && s !== '..'),
        )
        .map((lit) => ({ lit })),
    },
  );

  const arn: fc.Arbitrary<ArnRef> = fc.oneof(
    { weight: 10, arbitrary: id.map((i) => ({ form: 'good' as const, id: i })) },
    { weight: 1, arbitrary: id.map((i) => ({ form: 'unencoded' as const, id: i })) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          id,
          fc.constantFrom(
            'eu-west-1',
            'us-east-1',
            'ap-south-1',
            '',
            'cn-north-1',
            'us-gov-west-1',
            'US-EAST-1',
          ),
        )
        .map(([i, r]) => ({ form: 'region' as const, id: i, region: r })),
    },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom(
          'not-an-arn',
          'arn:aws:s3:::my-bucket',
          'arn:aws:apigateway:us-east-1::/restapis/abc123',
          'arn:aws:apigateway:us-east-1:/clientcertificates/abc123',
          'arn:aws:apigateway:us-east-1::/clientcertificates/../..',
          'arn:aws:apigateway:us-east-1::/clientcertificates/',
          'arn:aws:apigateway:us-east-1::/clientcertificates/abc123/tags',
          'arn:aws:apigateway:us-east-1:123456789012:/clientcertificates/abc123',
          'arn:aws-cn:apigateway:us-east-1::/clientcertificates/abc123',
          'arn:aws:apigateway:cn-north-1::/clientcertificates/abc123',
          'arn:aws-us-gov:apigateway:us-gov-west-1::/clientcertificates/abc123',
          'arn:aws:apigateway:us-east-1::clientcertificates/abc123',
          'ARN:aws:apigateway:us-east-1::/clientcertificates/abc123',
          `arn:${'x'.repeat(3000)}`,
        )
        .map((a) => ({ form: 'lit' as const, arn: a })),
    },
  );

  // Small pages most of the time: a sequence makes few certificates, and positions need more than a page.
  const limit = fc.option(
    fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom('1', '2', '3') },
      { weight: 1, arbitrary: fc.constantFrom('25', '500', '01') },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          '501',
          '0',
          '-1',
          'abc',
          '1.5',
          '',
          '1e2',
          '0x10',
          '00000000001',
          ' 1',
          '+1',
          '１',
        ),
      },
      { weight: 1, arbitrary: fc.integer({ min: -3, max: 600 }).map(String) },
    ),
    { nil: undefined, freq: 3 },
  );
  const position: fc.Arbitrary<PosRef | undefined> = fc.option(
    fc.oneof(
      { weight: 6, arbitrary: fc.nat().map((n) => ({ token: n })) },
      { weight: 1, arbitrary: fc.nat().map((n) => ({ tamper: n })) },
      {
        weight: 2,
        arbitrary: fc
          .oneof(
            fc.constantFrom(
              'garbage!',
              '',
              'YWJjMTIzOnRhZ3M',
              'QUJDREVG',
              'YWJjMTIz=',
              '\u{1F4A9}\u0000\n../"',
              'A'.repeat(5000),
            ),
            fc.string({ maxLength: 12 }),
          )
          .map((lit) => ({ lit })),
      },
    ),
    { nil: undefined, freq: 2 },
  );
  const tagKeys = fc.array(tagKey, { maxLength: 3 });

  const stepArb = (s: fc.Arbitrary<Step>, who = caller) =>
    fc.record({ caller: who, step: s, sdk: fc.boolean() }).map((spec) => new StepCommand(spec));
  // Generates lean to the account with a quota of 1, so its 429 comes up in most sequences.
  const generateCaller = fc.oneof(
    { weight: 3, arbitrary: caller },
    { weight: 1, arbitrary: fc.constant({ cred: 2, region: 'us-east-1' }) },
  );

  const commands = [
    stepArb(fc.record({ op: fc.constant('generate' as const), body: generateBody }), generateCaller),
    stepArb(fc.record({ op: fc.constant('get' as const), id })),
    stepArb(fc.record({ op: fc.constant('list' as const), limit, position }).map(dropUndefined)),
    stepArb(
      fc.record({
        op: fc.constant('list' as const),
        limit: fc.constantFrom('1', '2'),
        follow: fc.integer({ min: 1, max: 6 }),
      }),
    ),
    stepArb(fc.record({ op: fc.constant('update' as const), id, body: updateBody })),
    stepArb(fc.record({ op: fc.constant('delete' as const), id })),
    stepArb(fc.record({ op: fc.constant('tag' as const), arn, body: tagBody })),
    stepArb(fc.record({ op: fc.constant('untag' as const), arn, tagKeys })),
    stepArb(fc.record({ op: fc.constant('getTags' as const), arn })),
  ];
  // Generate is the expensive command (a real RSA key): it gets a small share, so most steps read and change.
  const weights = [3, 3, 3, 2, 3, 1, 3, 2, 3];
  return fc.oneof(...commands.map((arbitrary, i) => ({ weight: weights[i]!, arbitrary })));
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
