import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './redis-server.js';

/** Why nginx tests cannot run here, or undefined when an `nginx` binary is on PATH (or in /usr/sbin). */
export function nginxMissing(): string | undefined {
  for (const bin of ['nginx', '/usr/sbin/nginx']) {
    if (!spawnSync(bin, ['-v']).error) return undefined;
  }
  return 'nginx is not installed (Debian: apt-get install -y nginx-light)';
}

function nginxBinary(): string {
  return spawnSync('nginx', ['-v']).error ? '/usr/sbin/nginx' : 'nginx';
}

export interface TestNginx {
  port: number;
  /** nginx's error log so far (why a handshake was refused). */
  errorLog(): string;
  /** The folder holding nginx.conf, for files `serverDirectives` name. */
  dir: string;
  /** Re-reads the configuration and the files it names (SIGHUP; nginx starts new workers). */
  reload(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts nginx in the foreground with its own configuration in a temporary directory (pid, logs and
 * temp files inside it), on a free port of 127.0.0.1: TLS with `server`, `ssl_verify_client on`
 * trusting `clientCa` (PEM bundle), and a location that answers 200 with the client certificate's serial.
 */
export async function startNginx(opts: {
  server: { key: string; cert: string };
  clientCa: string;
  /** More directives in the server block (`ssl_crl`, `ssl_ocsp`, ...); `{dir}` stands for {@link TestNginx.dir}. */
  serverDirectives?: string;
  /** Files to write in the folder first, name → content. */
  files?: Record<string, string>;
  /** The location's directives, instead of the default answer (serial, verify result and URI). */
  location?: string;
  /** More directives in the http block (`map`, `ssl_ocsp_cache` zones, ...). */
  httpDirectives?: string;
}): Promise<TestNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'));
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), content);
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d));
  writeFileSync(join(dir, 'server.key'), opts.server.key, { mode: 0o600 });
  writeFileSync(join(dir, 'server.crt'), opts.server.cert);
  writeFileSync(join(dir, 'clients.pem'), opts.clientCa);
  const port = await freePort();
  // Run as root (the test machine's user), nginx would hand its workers to `nobody`, who cannot write here.
  const user = process.getuid?.() === 0 ? 'user root root;' : '';
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${user}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 1024; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  ${(opts.httpDirectives ?? '').replaceAll('{dir}', dir)}
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/server.crt;
    ssl_certificate_key ${dir}/server.key;
    ssl_client_certificate ${dir}/clients.pem;
    ssl_verify_client on;
    ${(opts.serverDirectives ?? '').replaceAll('{dir}', dir)}
    location / {
      ${
        opts.location ??
        `default_type text/plain;
      return 200 "serial=$ssl_client_serial verify=$ssl_client_verify uri=$request_uri\\n";`
      }
    }
  }
}
`,
  );
  const proc: ChildProcess = spawn(
    nginxBinary(),
    ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const errorLog = () => {
    try {
      return readFileSync(join(dir, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      () =>
        new Promise<boolean>((resolve) => {
          if (proc.exitCode !== null) {
            resolve(false);
            return;
          }
          const s = createConnection({ host: '127.0.0.1', port });
          s.once('connect', () => (s.destroy(), resolve(true)));
          s.once('error', () => resolve(false));
        }),
      10_000,
    );
  } catch {
    await stop();
    throw new Error(`nginx did not start: ${stderr}`);
  }
  const reload = async () => {
    const before = errorLog().length;
    proc.kill('SIGHUP');
    // Done once new workers run with the new files and the old ones (which still accept on the
    // listening socket until told to stop) have exited.
    await waitFor(() => /start worker process/.test(errorLog().slice(before)), 10_000);
    await waitFor(() => /worker process \d+ exited/.test(errorLog().slice(before)), 10_000);
  };
  return { port, dir, errorLog, reload, stop };
}
