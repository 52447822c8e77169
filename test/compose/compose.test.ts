/**
 * `npm run test:compose`: the Docker path as a user takes it, for real. Builds the image through the
 * compose file, starts the stack, issues through the AWS SDK, scales the workers to 3 and issues 12 at
 * once, restarts the API, takes the stack down and up again and finds every certificate (Redis's AOF
 * volume), then `down -v` removes what it made. Not part of `npm test` (it needs a Docker engine and
 * takes a few minutes); `.ci/run` runs it after `npm test`.
 *
 * Without a usable engine, compose, or disk, the suite is reported SKIPPED with the reason, never passed.
 * It works with `docker compose` (v2) and Debian's `docker-compose` (v1); COMPOSE=docker-compose picks one.
 * Its own project name and a free API port, so it never touches a developer's stack, 8080 or 6379.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { statfsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  GetClientCertificateCommand,
  GetClientCertificatesCommand,
  type ClientCertificate,
} from '@aws-sdk/client-api-gateway';
import { awsClient, showOutcome as outcome, generate } from '../../devtools/aws-client.js';
import { ROOT } from '../../devtools/processes.js';
import { freePort, waitFor } from '../../devtools/redis-server.js';

/** Free space the build needs beside the two base images (overlay2: well under 1 GB; vfs: several GB). */
const MIN_FREE_BYTES = 3 * 1024 ** 3;
const PROJECT = `cc-compose-test-${process.pid}`;

const ok = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() || String(r.error ?? '') };
};

/** The compose command to use, or why the suite cannot run here. */
function probe(): { compose: string[] } | { skip: string } {
  const info = ok('docker', ['info', '--format', '{{.DockerRootDir}}']);
  if (!info.ok) return { skip: `no usable Docker engine (docker info: ${info.out.split('\n')[0]})` };
  try {
    const fs = statfsSync(info.out.split('\n').pop()!);
    const free = fs.bavail * fs.bsize;
    if (free < MIN_FREE_BYTES) {
      return {
        skip: `too little disk for an image build: ${(free / 1024 ** 3).toFixed(1)} GiB free, 3 GiB needed`,
      };
    }
  } catch {
    // The engine's root is not on this machine (a remote or rootless engine): nothing to check here.
  }
  const candidates =
    process.env.COMPOSE === 'docker-compose'
      ? [['docker-compose']]
      : process.env.COMPOSE === 'docker compose'
        ? [['docker', 'compose']]
        : [['docker', 'compose'], ['docker-compose']];
  for (const c of candidates) if (ok(c[0]!, [...c.slice(1), 'version']).ok) return { compose: c };
  return { skip: 'neither `docker compose` (v2) nor `docker-compose` (v1) is installed' };
}

const found = probe();

/** Why the suite cannot run here; each test is then reported skipped with it (the summary counts them). */
const skip = 'skip' in found ? found.skip : undefined;

describe('the Docker image and the compose stack', () => {
  const compose = 'compose' in found ? found.compose : [];
  /** A test of this suite: skipped, with the reason, where the suite cannot run. */
  const test = (name: string, fn: () => Promise<void>) => it(name, { skip: skip ?? false }, fn);
  let port = 0;
  let url = '';
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The compose file reads these from the caller's environment; the test wants the file's own defaults.
  for (const v of ['NODE_ENV', 'MASTER_KEY', 'LOG_LEVEL', 'GENERATE_TIMEOUT_MS', 'UV_THREADPOOL_SIZE'])
    delete env[v];
  const issued = new Map<string, string>(); // id -> PEM

  /** Runs a compose command in the repository; rejects with its output on a non-zero exit. */
  const run = (args: string[], timeoutMs = 120_000): Promise<string> =>
    new Promise((resolve, reject) => {
      const p = spawn(compose[0]!, [...compose.slice(1), '-p', PROJECT, ...args], { cwd: ROOT, env });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
      p.once('error', reject);
      p.once('close', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else
          reject(
            new Error(`${compose.join(' ')} ${args.join(' ')} exited with ${code}:\n${out.slice(-4000)}`),
          );
      });
    });

  /** Waits until /health answers 200 with `workers` live workers. */
  const healthy = async (workers: number, timeoutMs = 120_000) => {
    let last = '';
    try {
      await waitFor(
        async () => {
          // The engine's port proxy accepts a connection before the API listens and may hold it open; fetch's
          // socket does not keep the process alive, so a pending fetch needs a timer that does.
          const abort = new AbortController();
          const timer = setTimeout(() => abort.abort(), 3000);
          try {
            const res = await fetch(`${url}/health`, { signal: abort.signal });
            last = `${res.status} ${await res.text()}`;
            return (
              res.status === 200 && (JSON.parse(last.slice(4)) as { workers: number }).workers === workers
            );
          } catch (err) {
            last = String(err);
            return false;
          } finally {
            clearTimeout(timer);
          }
        },
        timeoutMs,
        500,
      );
    } catch {
      const logs = await run(['logs', '--no-color', '--tail', '20']).catch((e: Error) => e.message);
      assert.fail(
        `/health did not report ${workers} workers within ${timeoutMs} ms (last: ${last})\n${logs}`,
      );
    }
  };

  const container = async (service: string) => (await run(['ps', '-q', service])).trim().split('\n')[0]!;

  before(async () => {
    if (skip) return;
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    env.API_PORT = String(port);
    await run(['build'], 20 * 60_000);
    await run(['up', '-d']);
    await healthy(1);
  });
  after(async () => {
    if (skip) return;
    // Whatever happened: containers, network, volumes and the images built here go; so do dangling build stages.
    await run(['down', '-v', '--rmi', 'local', '--timeout', '5']).catch(() => undefined);
    spawnSync('docker', ['image', 'prune', '-f'], { timeout: 60_000 });
  });

  test('runs the service as user node, with production dependencies only, and Redis not published', async () => {
    const api = await container('api');
    assert.equal(ok('docker', ['exec', api, 'id', '-un']).out, 'node');
    const modules = ok('docker', ['exec', api, 'ls', 'node_modules']).out.split('\n');
    assert.ok(modules.includes('bullmq'), modules.join(' '));
    for (const dev of ['tsx', 'esbuild', 'typescript-eslint'])
      assert.ok(!modules.includes(dev), `${dev} in the image`);
    const redis = await container('redis');
    assert.equal(ok('docker', ['port', redis]).out, '', 'Redis is published on the host');
  });

  test('issues a real certificate through the AWS SDK', async () => {
    const client = awsClient(url);
    const o = await generate(client, { description: 'compose', tags: { team: 'ci' } });
    client.destroy();
    assert.ok(o.ok, outcome(o));
    const cert = new X509Certificate(o.cert.pemEncodedCertificate!);
    assert.equal(cert.subject, 'C=US\nL=Seattle\nCN=ApiGateway');
    issued.set(o.cert.clientCertificateId!, o.cert.pemEncodedCertificate!);
  });

  test('scales to 3 workers and issues 12 certificates at once', async () => {
    await run(['up', '-d', '--scale', 'worker=3']);
    await healthy(3);
    const client = awsClient(url);
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) => generate(client, { description: `burst ${i}` })),
    );
    client.destroy();
    for (const o of outcomes) {
      assert.ok(o.ok, outcome(o));
      issued.set(o.cert.clientCertificateId!, o.cert.pemEncodedCertificate!);
    }
    assert.equal(issued.size, 13);
  });

  test('serves every certificate after the API restarts', async () => {
    await run(['restart', 'api']);
    await healthy(3);
    const client = awsClient(url);
    for (const [id, pem] of issued) {
      const got = await client.send(new GetClientCertificateCommand({ clientCertificateId: id }));
      assert.equal(got.pemEncodedCertificate, pem);
    }
    client.destroy();
  });

  test('keeps every certificate across down and up (the AOF volume), and issues again', async () => {
    await run(['down', '--timeout', '30']);
    await run(['up', '-d']);
    await healthy(1);
    const client = awsClient(url);
    const listed: ClientCertificate[] = [];
    let position: string | undefined;
    do {
      const page = await client.send(new GetClientCertificatesCommand({ limit: 500, position }));
      listed.push(...(page.items ?? []));
      position = page.position;
    } while (position);
    assert.deepEqual(new Map(listed.map((c) => [c.clientCertificateId!, c.pemEncodedCertificate!])), issued);
    // The workers still open the shared development master key from the `keys` volume.
    const o = await generate(client, { description: 'after down and up' });
    client.destroy();
    assert.ok(o.ok, outcome(o));
  });

  test('down -v removes the containers and the volumes', async () => {
    await run(['down', '-v', '--timeout', '30']);
    const label = `label=com.docker.compose.project=${PROJECT}`;
    assert.equal(ok('docker', ['ps', '-aq', '--filter', label]).out, '');
    assert.equal(ok('docker', ['volume', 'ls', '-q', '--filter', label]).out, '');
  });
});
