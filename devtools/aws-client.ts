import { execFile } from 'node:child_process';
import {
  APIGatewayClient,
  GenerateClientCertificateCommand,
  type GenerateClientCertificateCommandOutput,
} from '@aws-sdk/client-api-gateway';

/**
 * The real AWS SDK pointed at a test server: credentials test/test unless given (it signs with SigV4),
 * no retries (a test must see the first answer), and a request timeout so no call hangs a test.
 */
export function awsClient(
  url: string,
  opts: {
    requestTimeoutMs?: number;
    region?: string;
    accessKeyId?: string;
    secretAccessKey?: string;
    maxAttempts?: number;
  } = {},
) {
  return new APIGatewayClient({
    endpoint: url,
    region: opts.region ?? 'us-east-1',
    credentials: { accessKeyId: opts.accessKeyId ?? 'test', secretAccessKey: opts.secretAccessKey ?? 'test' },
    maxAttempts: opts.maxAttempts ?? 1,
    requestHandler: { requestTimeout: opts.requestTimeoutMs ?? 60_000 },
  });
}

/** One Generate as a client sees it: the certificate, or the error's status, type, message and Retry-After. */
export type Outcome =
  | { ok: true; ms: number; cert: GenerateClientCertificateCommandOutput }
  | {
      ok: false;
      ms: number;
      status: number | undefined;
      type: string;
      message: string;
      retryAfter: string | undefined;
    };

/** Calls GenerateClientCertificate and never throws: failures come back as data to assert on. */
export async function generate(
  client: APIGatewayClient,
  input: { description?: string; tags?: Record<string, string> } = {},
): Promise<Outcome> {
  const started = Date.now();
  try {
    const cert = await client.send(new GenerateClientCertificateCommand(input));
    return { ok: true, ms: Date.now() - started, cert };
  } catch (err) {
    const e = err as Error & {
      $metadata?: { httpStatusCode?: number };
      $response?: { headers?: Record<string, string> };
    };
    return {
      ok: false,
      ms: Date.now() - started,
      status: e.$metadata?.httpStatusCode,
      type: e.name,
      message: e.message,
      retryAfter: e.$response?.headers?.['retry-after'],
    };
  }
}

/** A compact description of an outcome, for assertion messages. */
export function showOutcome(o: Outcome): string {
  return o.ok
    ? `201 ${o.cert.clientCertificateId} in ${o.ms} ms`
    : `${o.status} ${o.type}: ${o.message} in ${o.ms} ms`;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a real AWS client (the `aws` CLI or `python3` with boto3) asynchronously, so the in-process server keeps answering. */
export function runTool(
  cmd: string,
  args: string[],
  o: { accessKeyId?: string; secretAccessKey?: string; region?: string } = {},
): Promise<ToolResult> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: o.accessKeyId ?? 'test',
    AWS_SECRET_ACCESS_KEY: o.secretAccessKey ?? 'test',
    AWS_DEFAULT_REGION: o.region ?? 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_MAX_ATTEMPTS: '1',
    AWS_RETRY_MODE: 'standard',
  };
  delete env.AWS_SESSION_TOKEN;
  delete env.AWS_PROFILE;
  return new Promise((resolve) => {
    execFile(cmd, args, { env, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Whether a command exists on PATH (the CLI and boto3 tests skip, saying so, when it does not). */
export async function hasTool(cmd: string, args: string[]): Promise<boolean> {
  const r = await runTool(cmd, args);
  return r.code === 0;
}
