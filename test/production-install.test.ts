import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetClientCertificateCommand } from '@aws-sdk/client-api-gateway';
import { awsClient, showOutcome as outcome, generate } from '../devtools/aws-client.js';
import { ROOT } from '../devtools/processes.js';
import { startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';

/** A process of the installed service, with every line it wrote to stdout and to stderr. */
interface Running {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
}

// What the Docker image ships: the built dist/, package.json and a production install from the lock file
// (`npm ci --omit=dev --omit=optional`), in a folder with no node_modules above it. A runtime dependency filed under
// devDependencies, or marked `"dev": true` in the lock file, is missing there and the service fails here.
describe('a production install of the build (npm ci --omit=dev --omit=optional, as in the Docker image)', () => {
  let dir: string;
  let redis: TestRedis;
  const procs: Running[] = [];
  let url = '';
  let install: { status: number | null; stdout: string; stderr: string } = {
    status: null,
    stdout: '',
    stderr: '',
  };

  /** Starts `node dist/<script>` in the install folder with only the environment given. */
  const run = (script: string, env: Record<string, string>): Running => {
    const proc = spawn(process.execPath, ['--enable-source-maps', script], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r: Running = { proc, stdout: [], stderr: [] };
    for (const [stream, lines] of [
      [proc.stdout!, r.stdout],
      [proc.stderr!, r.stderr],
    ] as const) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop() ?? '';
        lines.push(...parts.filter((l) => l.trim()));
      });
    }
    procs.push(r);
    return r;
  };
  const output = () => procs.flatMap((p) => [...p.stderr.slice(-5), ...p.stdout.slice(-10)]).join('\n');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cc-prod-install-'));
    // Its own build, not the shared dist/ that another test file may be rebuilding meanwhile.
    const build = spawnSync(process.execPath, ['scripts/build.mjs', '--outdir', join(dir, 'dist')], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(build.status, 0, build.stderr);
    for (const f of ['package.json', 'package-lock.json', '.npmrc']) cpSync(join(ROOT, f), join(dir, f));
    install = spawnSync(
      'npm',
      ['ci', '--omit=dev', '--omit=optional', '--no-audit', '--no-fund', '--prefer-offline'],
      {
        cwd: dir,
        encoding: 'utf8',
        timeout: 300_000,
      },
    );
    assert.equal(install.status, 0, `npm ci --omit=dev --omit=optional failed:\n${install.stderr}`);
    redis = await startRedis();
  });
  after(async () => {
    for (const p of procs) if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
    await redis?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('prints no npm warning (no EBADENGINE, no install script left undecided, no deprecated package)', () => {
    const warnings = `${install.stdout}\n${install.stderr}`.split('\n').filter((l) => /^npm warn/i.test(l));
    assert.deepEqual(warnings, [], `on Node ${process.version}`);
  });

  it('installs no development dependency', () => {
    for (const dev of ['tsx', 'esbuild', 'eslint', '@aws-sdk/client-api-gateway', 'typescript']) {
      assert.equal(existsSync(join(dir, 'node_modules', dev)), false, `${dev} is installed`);
    }
  });

  it('starts the API and a worker with NODE_ENV=production, and issues a certificate', async () => {
    const credentialsFile = join(dir, 'credentials.json');
    const secretAccessKey = randomBytes(16).toString('hex');
    writeFileSync(
      credentialsFile,
      JSON.stringify([{ accessKeyId: 'AKIAPRODINSTALL', secretAccessKey, accountId: '123456789012' }]),
      { mode: 0o600 },
    );
    const env = {
      NODE_ENV: 'production',
      REDIS_URL: redis.url,
      MASTER_KEY: randomBytes(32).toString('base64'),
      CREDENTIALS_FILE: credentialsFile,
      HOST: '127.0.0.1',
      PORT: '0',
      KEY_POOL_SIZE: '0',
      WORKER_CONCURRENCY: '1',
      UV_THREADPOOL_SIZE: '4',
    };
    const api = run('dist/api/main.js', env);
    // pino-pretty is a runtime dependency too: LOG_FORMAT=pretty loads it as a transport.
    run('dist/worker/main.js', { ...env, LOG_FORMAT: 'pretty' });
    await waitFor(
      () => {
        const listening = api.stdout.find((l) => l.includes('"API listening"'));
        if (listening) url = (JSON.parse(listening) as { url: string }).url;
        return url !== '' || procs.some((p) => p.proc.exitCode !== null);
      },
      30_000,
      100,
    ).catch(() => undefined);
    assert.notEqual(url, '', `the API did not start:\n${output()}`);
    await waitFor(
      async () => {
        const h = (await (await fetch(`${url}/health`)).json()) as { workers?: number };
        return h.workers === 1 || procs.some((p) => p.proc.exitCode !== null);
      },
      30_000,
      100,
    ).catch(() => undefined);
    assert.ok(
      procs.every((p) => p.proc.exitCode === null),
      `a process exited:\n${output()}`,
    );

    const client = awsClient(url, { accessKeyId: 'AKIAPRODINSTALL', secretAccessKey });
    const o = await generate(client, { description: 'production install' });
    assert.ok(o.ok, `${outcome(o)}\n${output()}`);
    const cert = new X509Certificate(o.cert.pemEncodedCertificate!);
    assert.equal(cert.subject, 'C=US\nL=Seattle\nCN=ApiGateway');
    const got = await client.send(
      new GetClientCertificateCommand({ clientCertificateId: o.cert.clientCertificateId }),
    );
    assert.equal(got.pemEncodedCertificate, o.cert.pemEncodedCertificate);
    client.destroy();
  });

  it('logs JSON lines when stdout is not a terminal, and pretty lines with LOG_FORMAT=pretty', () => {
    const [api, worker] = procs;
    assert.ok(api!.stdout.length >= 2);
    for (const line of api!.stdout) assert.doesNotThrow(() => JSON.parse(line), line);
    assert.ok(
      worker!.stdout.some((l) => /INFO.* \(worker\/\d+\): .*worker ready/.test(l)),
      worker!.stdout.join('\n'),
    );
  });
});
