import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  CredentialStore,
  CredentialsError,
  isAllowed,
  loadCredentials,
  parseCredentials,
} from '../api/auth/credentials.js';
import { parseLongDate } from '../api/auth/sigv4.js';
import { loadConfig } from '../shared/config.js';
import { createLogger } from '../shared/logger.js';
import { LogSink } from '../devtools/service.js';

const entry = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 's3cr3t-value', accountId: '123456789012' };

describe('credentials file', () => {
  it('parses entries and defaults allow to apigateway:*', () => {
    const [c] = parseCredentials(JSON.stringify([entry]));
    assert.deepEqual(c, { ...entry, allow: ['apigateway:*'] });
  });

  it('keeps allow and clientCertificateLimit', () => {
    const [c] = parseCredentials(
      JSON.stringify([{ ...entry, allow: ['apigateway:GET'], clientCertificateLimit: 5 }]),
    );
    assert.deepEqual(c?.allow, ['apigateway:GET']);
    assert.equal(c?.clientCertificateLimit, 5);
  });

  const bad: [string, unknown, RegExp][] = [
    ['not JSON', '{', /is not valid JSON/],
    ['not an array', { ...entry }, /non-empty JSON array/],
    ['an empty array', [], /non-empty JSON array/],
    ['a short account id', [{ ...entry, accountId: '123' }], /entry 0: accountId must be 12 digits/],
    ['a missing secret', [{ accessKeyId: 'A', accountId: '123456789012' }], /entry 0: secretAccessKey/],
    ['an unknown action', [{ ...entry, allow: ['s3:GetObject'] }], /entry 0: allow\.0 must be apigateway/],
    ['an unknown field', [{ ...entry, role: 'admin' }], /entry 0: .*role/],
    ['a negative limit', [{ ...entry, clientCertificateLimit: -1 }], /entry 0: clientCertificateLimit/],
  ];
  for (const [what, value, re] of bad) {
    it(`rejects ${what}, naming the entry and never the secret`, () => {
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      assert.throws(
        () => parseCredentials(text),
        (err: Error) => {
          assert.ok(err instanceof CredentialsError);
          assert.match(err.message, re);
          assert.doesNotMatch(err.message, /s3cr3t-value/);
          return true;
        },
      );
    });
  }

  it('says where a JSON syntax error is without quoting the file (V8 quotes the text around it)', () => {
    for (const [text, where] of [
      ['[{"accessKeyId":"AKIDEXAMPLE","secretAccessKey":s3cr3t-value}]', /is not valid JSON$/],
      [
        '[{"accessKeyId":"AKIDEXAMPLE",\n "secretAccessKey":"s3cr3t-value",}]',
        /is not valid JSON at line 2, column 35$/,
      ],
    ] as const) {
      assert.throws(
        () => parseCredentials(text),
        (err: Error) => {
          assert.match(err.message, where);
          assert.doesNotMatch(err.message, /s3cr|cr3t|t-va/);
          return true;
        },
      );
    }
  });

  it('rejects a duplicate access key and conflicting limits of one account', () => {
    assert.throws(
      () => new CredentialStore(parseCredentials(JSON.stringify([entry, entry]))),
      /duplicate accessKeyId/,
    );
    const two = [
      { ...entry, clientCertificateLimit: 1 },
      { ...entry, accessKeyId: 'OTHER', clientCertificateLimit: 2 },
    ];
    assert.throws(
      () => new CredentialStore(parseCredentials(JSON.stringify(two))),
      /two different clientCertificateLimit/,
    );
  });

  it('gives per-account limits from the file', () => {
    const store = new CredentialStore(
      parseCredentials(JSON.stringify([{ ...entry, clientCertificateLimit: 3 }])),
    );
    assert.equal(store.limitFor('123456789012'), 3);
    assert.equal(store.limitFor('999999999999'), undefined);
  });

  it('allows by IAM action name', () => {
    assert.ok(isAllowed({ allow: ['apigateway:*'] }, 'apigateway:DELETE'));
    assert.ok(isAllowed({ allow: ['apigateway:GET'] }, 'apigateway:GET'));
    assert.ok(isAllowed({ allow: ['apigateway:get'] }, 'apigateway:GET'));
    assert.ok(!isAllowed({ allow: ['apigateway:GET'] }, 'apigateway:POST'));
    assert.ok(!isAllowed({ allow: [] }, 'apigateway:GET'));
  });

  it('without CREDENTIALS_FILE accepts only test/test and warns', () => {
    const sink = new LogSink();
    const store = loadCredentials(
      { credentialsFile: undefined, nodeEnv: 'development' },
      createLogger('info', 't', sink),
    );
    assert.equal(store.size, 1);
    assert.deepEqual(store.get('test'), {
      accessKeyId: 'test',
      secretAccessKey: 'test',
      accountId: '000000000000',
      allow: ['apigateway:*'],
    });
    assert.ok(sink.lines.some((l) => JSON.parse(l).level === 40 && /CREDENTIALS_FILE is not set/.test(l)));
  });

  it('refuses to start in production without CREDENTIALS_FILE', () => {
    assert.throws(
      () =>
        loadCredentials({ credentialsFile: undefined, nodeEnv: 'production' }, createLogger('silent', 't')),
      /CREDENTIALS_FILE is required when NODE_ENV=production/,
    );
  });

  it('loads a file and names an unreadable one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cc-creds-'));
    try {
      const file = join(dir, 'credentials.json');
      writeFileSync(file, JSON.stringify([entry]));
      const store = loadCredentials(
        { credentialsFile: file, nodeEnv: 'production' },
        createLogger('silent', 't'),
      );
      assert.equal(store.get('AKIDEXAMPLE')?.accountId, '123456789012');
      assert.throws(
        () =>
          loadCredentials(
            { credentialsFile: join(dir, 'nope.json'), nodeEnv: 'production' },
            createLogger('silent', 't'),
          ),
        /CREDENTIALS_FILE .*nope\.json cannot be read: ENOENT/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('auth configuration', () => {
  it('defaults: limit 60, 10 rps, burst 40, no credentials file', () => {
    const c = loadConfig({});
    assert.equal(c.clientCertificateLimit, 60);
    assert.equal(c.rateLimitRps, 10);
    assert.equal(c.rateLimitBurst, 40);
    assert.equal(c.credentialsFile, undefined);
  });

  it('reads and validates the variables, naming the bad one', () => {
    const c = loadConfig({
      CLIENT_CERTIFICATE_LIMIT: '5',
      RATE_LIMIT_RPS: '0.5',
      RATE_LIMIT_BURST: '2',
      CREDENTIALS_FILE: '/etc/cc/credentials.json',
    });
    assert.equal(c.clientCertificateLimit, 5);
    assert.equal(c.rateLimitRps, 0.5);
    assert.equal(c.rateLimitBurst, 2);
    assert.equal(c.credentialsFile, '/etc/cc/credentials.json');
    assert.throws(
      () => loadConfig({ RATE_LIMIT_RPS: 'fast' }),
      /RATE_LIMIT_RPS must be a non-negative number/,
    );
    assert.throws(() => loadConfig({ RATE_LIMIT_BURST: '0' }), /RATE_LIMIT_BURST must be between 1/);
    assert.throws(
      () => loadConfig({ CLIENT_CERTIFICATE_LIMIT: '-1' }),
      /CLIENT_CERTIFICATE_LIMIT must be a whole number/,
    );
  });
});

describe('X-Amz-Date parsing', () => {
  it('reads the basic ISO 8601 format and rejects impossible dates', () => {
    assert.equal(parseLongDate('20261128T225000Z'), Date.UTC(2026, 10, 28, 22, 50, 0));
    assert.equal(parseLongDate('20261131T225000Z'), undefined);
    assert.equal(parseLongDate('20261128T245000Z'), undefined);
    assert.equal(parseLongDate('2026-11-28T22:50:00Z'), undefined);
  });
});
