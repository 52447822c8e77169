import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../shared/config.js';
import { EXIT_CONFIG } from '../shared/startup-errors.js';
import {
  certificateAuthorityFrom,
  readCertificateAuthority,
  type CertificateAuthority,
} from '../shared/certificate-authority.js';
import { buildCertificate } from '../worker/certificate-builder.js';
import { useService } from './helpers/fixture.js';
import { nodeArgs } from '../devtools/entry.js';
import { freePort } from '../devtools/redis-server.js';
import { signedFetch } from '../devtools/signed-fetch.js';
import { ecCa, rsaCa, type Pem } from '../devtools/tls.js';

const dir = mkdtempSync(join(tmpdir(), 'ca-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(content: string): string {
  const f = join(dir, `f${n++}.pem`);
  writeFileSync(f, content);
  return f;
}

/** `openssl verify -CAfile ca cert`: its output, or its error output when it fails. */
function opensslVerify(caPem: string, certPem: string): string {
  try {
    return execFileSync('openssl', ['verify', '-CAfile', file(caPem), file(certPem)], { stdio: 'pipe' })
      .toString()
      .trim();
  } catch (err) {
    return (
      String((err as { stderr?: Buffer; stdout?: Buffer }).stdout) +
      String((err as { stderr?: Buffer }).stderr)
    );
  }
}

/** One extension as `openssl x509 -ext` prints it, header line dropped. */
function ext(certPem: string, name: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-ext', name, '-in', file(certPem)])
    .toString()
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
}

const ca = (pem: Pem) =>
  certificateAuthorityFrom(pem.cert, pem.key, { certFile: 'ca.pem', keyFile: 'ca.key' });

function issue(authority: CertificateAuthority, serialHex = '3b9aca07') {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const createdDate = Math.floor(Date.now() / 1000);
  const pem = buildCertificate({
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
    privateKey,
    createdDate,
    serialHex,
    issuer: authority,
  });
  return { pem, createdDate };
}

describe('CA-signed certificates', () => {
  for (const [kind, make] of [
    ['RSA', () => rsaCa()],
    ['EC P-256', () => ecCa()],
  ] as const) {
    test(`a ${kind} CA issues certificates OpenSSL verifies, with the CA as issuer and the modern extensions`, () => {
      const pem = make();
      const { pem: certPem, createdDate } = issue(ca(pem));
      assert.equal(opensslVerify(pem.cert, certPem), `${join(dir, `f${n - 1}.pem`)}: OK`);
      const x = new X509Certificate(certPem);
      const caX = new X509Certificate(pem.cert);
      assert.equal(x.issuer, caX.subject);
      assert.ok(x.checkIssued(caX));
      assert.ok(x.verify(caX.publicKey));
      assert.equal(x.subject, 'C=US\nL=Seattle\nCN=ApiGateway');
      assert.equal(x.serialNumber, '3B9ACA07');
      assert.equal(Date.parse(x.validFrom) / 1000, createdDate);
      assert.equal((Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86_400_000, 365);
      assert.equal(x.ca, false);
      assert.match(certPem, /^-----BEGIN CERTIFICATE-----\r\n[\s\S]+\r\n-----END CERTIFICATE-----$/);
      assert.equal(ext(certPem, 'authorityKeyIdentifier'), ext(pem.cert, 'subjectKeyIdentifier'));
      assert.match(ext(certPem, 'subjectKeyIdentifier'), /^[0-9A-F:]{59}$/);
      assert.equal(ext(certPem, 'basicConstraints'), 'CA:FALSE');
      assert.equal(ext(certPem, 'keyUsage'), 'Digital Signature');
      assert.equal(ext(certPem, 'extendedKeyUsage'), 'TLS Web Client Authentication');
    });
  }

  test('another CA does not verify it', () => {
    const { pem } = issue(ca(rsaCa()));
    assert.match(opensslVerify(rsaCa().cert, pem), /unable to get local issuer certificate/);
  });

  test('refuses a certificate that is not a CA, an expired or not yet valid CA, and a key that is not its own', () => {
    const files = { certFile: 'ca.pem', keyFile: 'ca.key' };
    const leaf = rsaCa({ ca: false });
    assert.throws(() => certificateAuthorityFrom(leaf.cert, leaf.key, files), {
      name: 'ConfigError',
      message: 'CA_CERT_FILE ca.pem is not a CA certificate (its basicConstraints do not say CA:TRUE)',
    });
    const expired = rsaCa({
      notBefore: new Date('2020-01-01T00:00:00Z'),
      notAfter: new Date('2021-01-01T00:00:00Z'),
    });
    assert.throws(() => certificateAuthorityFrom(expired.cert, expired.key, files), {
      name: 'ConfigError',
      message: 'CA_CERT_FILE ca.pem expired on 2021-01-01T00:00:00.000Z',
    });
    const future = rsaCa({
      notBefore: new Date('2099-01-01T00:00:00Z'),
      notAfter: new Date('2100-01-01T00:00:00Z'),
    });
    assert.throws(() => certificateAuthorityFrom(future.cert, future.key, files), {
      message: 'CA_CERT_FILE ca.pem is not valid before 2099-01-01T00:00:00.000Z',
    });
    const a = rsaCa();
    const b = ecCa();
    assert.throws(() => certificateAuthorityFrom(a.cert, rsaCa().key, files), {
      name: 'ConfigError',
      message: 'CA_KEY_FILE ca.key is not the key of CA_CERT_FILE ca.pem',
    });
    assert.throws(() => certificateAuthorityFrom(b.cert, a.key, files), {
      message: 'CA_KEY_FILE ca.key is not the key of CA_CERT_FILE ca.pem',
    });
    assert.throws(
      () => certificateAuthorityFrom('nope', a.key, files),
      /^ConfigError: CA_CERT_FILE ca.pem is not a PEM certificate/,
    );
    assert.throws(
      () => certificateAuthorityFrom(a.cert, 'nope', files),
      /CA_KEY_FILE ca.key is not an unencrypted PEM private key/,
    );
    assert.throws(() => readCertificateAuthority(join(dir, 'missing.pem'), 'x'), {
      message: `CA_CERT_FILE ${join(dir, 'missing.pem')} cannot be read: ENOENT`,
    });
  });

  /** A self-signed CA:TRUE certificate made by the openssl CLI with the given extra `-addext` values. */
  function opensslCa(...addext: string[]): Pem {
    const key = join(dir, `k${n++}.pem`);
    const cert = join(dir, `c${n++}.pem`);
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30'],
        ...['-subj', '/CN=keyUsage test CA', '-addext', 'basicConstraints=critical,CA:TRUE'],
        ...addext.flatMap((e) => ['-addext', e]),
      ],
      { stdio: 'pipe' },
    );
    return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
  }

  test('refuses a CA whose keyUsage extension leaves out keyCertSign; takes one with it or without keyUsage', () => {
    const files = { certFile: 'ca.pem', keyFile: 'ca.key' };
    const message =
      'CA_CERT_FILE ca.pem may not sign certificates: its keyUsage extension does not include keyCertSign';
    for (const usage of ['keyUsage=critical,digitalSignature,cRLSign', 'keyUsage=digitalSignature']) {
      const bad = opensslCa(usage);
      assert.match(ext(bad.cert, 'keyUsage'), /Digital Signature/);
      assert.throws(() => certificateAuthorityFrom(bad.cert, bad.key, files), {
        name: 'ConfigError',
        message,
      });
    }
    const good = opensslCa('keyUsage=critical,keyCertSign,cRLSign');
    assert.ok(certificateAuthorityFrom(good.cert, good.key, files));
    const free = opensslCa();
    assert.equal(ext(free.cert, 'keyUsage'), '', 'no keyUsage extension: no restriction');
    assert.ok(certificateAuthorityFrom(free.cert, free.key, files));
  });

  test('CERT_ISSUER is self by default; ca needs both files', () => {
    const c = loadConfig({});
    assert.deepEqual([c.certIssuer, c.caCertFile, c.caKeyFile], ['self', undefined, undefined]);
    assert.throws(() => loadConfig({ CERT_ISSUER: 'ca', CA_CERT_FILE: 'ca.pem' }), {
      name: 'ConfigError',
      message:
        'invalid configuration: CERT_ISSUER=ca needs CA_CERT_FILE and CA_KEY_FILE (PEM files of the signing CA)',
    });
    assert.throws(
      () => loadConfig({ CERT_ISSUER: 'acme' }),
      /CERT_ISSUER must be one of self, ca, got "acme"/,
    );
    const ok = loadConfig({ CERT_ISSUER: 'ca', CA_CERT_FILE: 'ca.pem', CA_KEY_FILE: 'ca.key' });
    assert.deepEqual([ok.certIssuer, ok.caCertFile, ok.caKeyFile], ['ca', 'ca.pem', 'ca.key']);
  });

  test('a worker refuses to start on a CA key that does not match, naming the variable, with exit code 78', async () => {
    const a = rsaCa();
    const child = spawn(process.execPath, [...nodeArgs('worker/main.ts')], {
      env: {
        ...process.env,
        NODE_ENV: 'test',
        LOG_LEVEL: 'silent',
        // Nothing listens there: the worker must stop before it needs Redis.
        REDIS_URL: 'redis://127.0.0.1:1',
        MASTER_KEY: Buffer.alloc(32, 1).toString('base64'),
        UV_THREADPOOL_SIZE: '64',
        CERT_ISSUER: 'ca',
        CA_CERT_FILE: file(a.cert),
        CA_KEY_FILE: file(rsaCa().key),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, EXIT_CONFIG);
    assert.match(stderr, /^CA_KEY_FILE \S+ is not the key of CA_CERT_FILE \S+\n$/);
    assert.doesNotMatch(stderr, /PRIVATE KEY/);
  });
});

test('npm start stops, rather than restarting workers, when the CA is not a CA', async () => {
  const leaf = rsaCa({ ca: false });
  const launcher = spawn(process.execPath, [...nodeArgs('scripts/start.ts')], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      PORT: String(await freePort()),
      // Nothing listens there: the API starts anyway (and answers 503); workers stop before they need Redis.
      REDIS_URL: 'redis://127.0.0.1:1',
      MASTER_KEY: Buffer.alloc(32, 2).toString('base64'),
      WORKER_PROCESSES: '1',
      KEY_POOL_SIZE: '0',
      CERT_ISSUER: 'ca',
      CA_CERT_FILE: file(leaf.cert),
      CA_KEY_FILE: file(leaf.key),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  launcher.stdout.on('data', (d: Buffer) => (output += d.toString()));
  launcher.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const timer = setTimeout(() => launcher.kill('SIGKILL'), 90_000);
  const [code] = (await once(launcher, 'exit')) as [number];
  clearTimeout(timer);
  assert.equal(code, 1, output);
  assert.match(
    output,
    /CA_CERT_FILE \S+ is not a CA certificate \(its basicConstraints do not say CA:TRUE\)/,
  );
  assert.match(output, /child process refused its configuration: stopping/);
  assert.doesNotMatch(output, /restarting/);
});

describe('CA mode end to end', () => {
  const pem = ecCa('End To End CA');
  const fx = useService({ ca: ca(pem) });

  test('a generated certificate is issued by the CA and its record is unchanged in shape', async () => {
    const res = await signedFetch(fx.svc.api.url, '/clientcertificates', {
      method: 'POST',
      body: JSON.stringify({ description: 'ca mode' }),
    });
    assert.equal(res.status, 201);
    const body = (await res.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), [
      'clientCertificateId',
      'createdDate',
      'description',
      'expirationDate',
      'pemEncodedCertificate',
    ]);
    assert.equal((body.expirationDate as number) - (body.createdDate as number), 365 * 86_400);
    const x = new X509Certificate(body.pemEncodedCertificate as string);
    assert.equal(x.issuer, 'O=Example Test\nCN=End To End CA');
    assert.match(opensslVerify(pem.cert, body.pemEncodedCertificate as string), /: OK$/);
    const logs = fx.svc.logs.lines.join('\n');
    assert.doesNotMatch(logs, /PRIVATE KEY/);
  });
});
