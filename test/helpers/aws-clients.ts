import { execFile } from 'node:child_process';

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
