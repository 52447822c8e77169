import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { awsClient, generate } from '../devtools/aws-client.js';
import { ROOT } from '../devtools/processes.js';
import { freePort, startRedis, waitFor, type TestRedis } from '../devtools/redis-server.js';

/** The pids of `pid`'s direct children, with their command lines. */
function children(pid: number): { pid: number; cmd: string }[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .map((p) => {
        try {
          return { pid: p, cmd: readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() };
        } catch {
          return { pid: p, cmd: '' };
        }
      });
  } catch {
    return [];
  }
}

const alive = (pid: number) =>
  existsSync(`/proc/${pid}`) && !/State:\s+Z/.test(readFileSync(`/proc/${pid}/status`, 'utf8'));

// What `npm start`, the Docker image and the bench run: the build in dist/, not the TypeScript sources.
describe('npm run build and the built launcher (npm start)', () => {
  let redis: TestRedis;
  let launcher: ChildProcess;
  let url: string;
  let output = '';
  let dir = '';

  before(async () => {
    // npm run build into a folder of its own (another test file may be rebuilding dist/ meanwhile), beside the
    // project's package.json and node_modules as dist/ is.
    dir = mkdtempSync(join(tmpdir(), 'cc-launcher-'));
    const build = spawnSync(process.execPath, ['scripts/build.mjs', '--outdir', join(dir, 'dist')], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(build.status, 0, build.stderr);
    cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    redis = await startRedis();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    launcher = spawn(process.execPath, ['dist/scripts/start.js'], {
      cwd: dir,
      env: {
        ...process.env,
        PORT: String(port),
        REDIS_URL: redis.url,
        MASTER_KEY: randomBytes(32).toString('base64'),
        WORKER_PROCESSES: '2',
        KEY_POOL_SIZE: '1',
        WORKER_CONCURRENCY: '1',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    launcher.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    launcher.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor(async () => {
      try {
        const h = (await (await fetch(`${url}/health`)).json()) as { workers: number };
        return h.workers === 2;
      } catch {
        return false;
      }
    }, 30_000);
  });
  after(async () => {
    if (launcher && launcher.exitCode === null) launcher.kill('SIGKILL');
    await redis?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the API and each worker as plain JavaScript from dist/, with no loader', () => {
    const kids = children(launcher.pid!);
    const roles = kids.map((k) => k.cmd).sort();
    assert.equal(kids.length, 3, output);
    assert.match(roles[0]!, /--enable-source-maps \S+\/dist\/api\/main\.js$/);
    assert.match(roles[1]!, /--enable-source-maps \S+\/dist\/worker\/main\.js$/);
    assert.match(roles[2]!, /--enable-source-maps \S+\/dist\/worker\/main\.js$/);
    for (const k of kids) assert.doesNotMatch(k.cmd, /tsx/);
  });

  it('issues a real certificate through the AWS SDK', async () => {
    const out = await generate(awsClient(url), { description: 'built' });
    assert.ok(out.ok, JSON.stringify(out));
    const cert = new X509Certificate(out.cert.pemEncodedCertificate!);
    assert.ok(cert.verify(cert.publicKey));
    assert.equal(out.cert.description, 'built');
  });

  it('stops the API and the workers on SIGTERM and exits 0', async () => {
    const kids = children(launcher.pid!);
    const exited = new Promise<number | null>((r) => launcher.once('exit', (code) => r(code)));
    launcher.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    await waitFor(() => kids.every((k) => !alive(k.pid)), 10_000);
  });
});
