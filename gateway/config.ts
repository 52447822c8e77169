import { parseArgs } from 'node:util';
import { ConfigError } from '../shared/config.js';
import { CLIENT_CERTIFICATE_ID } from '../shared/ids.js';
import { AWS_REGION } from '../shared/validation.js';

/** What `npm run gateway` runs with: each option from its flag, else its GATEWAY_* variable, else the default. */
export interface GatewayConfig {
  /** --client-certificate-id / GATEWAY_CLIENT_CERTIFICATE_ID (required). */
  clientCertificateId: string;
  /** --target / GATEWAY_TARGET (required): `https://host:port[/base]`. */
  target: URL;
  /** --listen / GATEWAY_LISTEN: `host:port` (default 127.0.0.1:8081). */
  listenHost: string;
  listenPort: number;
  /** --target-ca / GATEWAY_TARGET_CA: PEM file the target's certificate is checked against (default: system CAs). */
  targetCaFile: string | undefined;
  /** --account / GATEWAY_ACCOUNT (default DEFAULT_ACCOUNT_ID, the development credential's account). */
  accountId: string;
  /** --region / GATEWAY_REGION (default DEFAULT_REGION, us-east-1). */
  region: string;
  /** GATEWAY_REFRESH_MS: how often the gateway checks that the certificate still exists (default 5000). */
  refreshIntervalMs: number;
}

export const DEFAULT_GATEWAY_LISTEN = '127.0.0.1:8081';

/**
 * Reads the gateway's options from `argv` (flags win) and `env`. Pure.
 * @param defaults the service's DEFAULT_ACCOUNT_ID and DEFAULT_REGION.
 * @throws ConfigError naming every flag or variable that is missing or wrong.
 */
export function loadGatewayConfig(
  argv: string[],
  env: NodeJS.ProcessEnv,
  defaults: { accountId: string; region: string },
): GatewayConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        'client-certificate-id': { type: 'string' },
        target: { type: 'string' },
        listen: { type: 'string' },
        'target-ca': { type: 'string' },
        account: { type: 'string' },
        region: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ConfigError(`invalid gateway options: ${(err as Error).message}`);
  }
  const pick = (flag: keyof typeof values, name: string) => {
    const v = values[flag] ?? env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const problems: string[] = [];
  const id = pick('client-certificate-id', 'GATEWAY_CLIENT_CERTIFICATE_ID');
  if (id === undefined) problems.push('--client-certificate-id (GATEWAY_CLIENT_CERTIFICATE_ID) is required');
  else if (!CLIENT_CERTIFICATE_ID.test(id)) {
    problems.push(`--client-certificate-id must be a client certificate id, got ${JSON.stringify(id)}`);
  }
  const targetText = pick('target', 'GATEWAY_TARGET');
  let target: URL | undefined;
  if (targetText === undefined)
    problems.push('--target (GATEWAY_TARGET) is required, e.g. https://127.0.0.1:8443');
  else {
    try {
      target = new URL(targetText);
    } catch {
      target = undefined;
    }
    if (target?.protocol !== 'https:' || target.search || target.hash) {
      problems.push(
        `--target (GATEWAY_TARGET) must be an https:// URL without query, got ${JSON.stringify(targetText)}`,
      );
    }
  }
  const listen = pick('listen', 'GATEWAY_LISTEN') ?? DEFAULT_GATEWAY_LISTEN;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(listen);
  const listenPort = m ? Number(m[2]) : NaN;
  if (!m || listenPort > 65535) {
    problems.push(`--listen (GATEWAY_LISTEN) must be host:port, got ${JSON.stringify(listen)}`);
  }
  const accountId = pick('account', 'GATEWAY_ACCOUNT') ?? defaults.accountId;
  if (!/^\d{12}$/.test(accountId))
    problems.push(`--account (GATEWAY_ACCOUNT) must be 12 digits, got ${JSON.stringify(accountId)}`);
  const region = pick('region', 'GATEWAY_REGION') ?? defaults.region;
  if (!AWS_REGION.test(region)) {
    problems.push(`--region (GATEWAY_REGION) must look like an AWS region, got ${JSON.stringify(region)}`);
  }
  const refreshText = env.GATEWAY_REFRESH_MS?.trim() || '5000';
  const refreshIntervalMs = Number(refreshText);
  if (!/^\d+$/.test(refreshText) || refreshIntervalMs < 100 || refreshIntervalMs > 15_000) {
    problems.push(
      `GATEWAY_REFRESH_MS must be a whole number between 100 and 15000, got ${JSON.stringify(refreshText)}`,
    );
  }
  if (problems.length) throw new ConfigError(`invalid gateway configuration: ${problems.join('; ')}`);
  return {
    clientCertificateId: id!,
    target: target!,
    listenHost: m![1]!.replace(/^\[|\]$/g, ''),
    listenPort,
    targetCaFile: pick('target-ca', 'GATEWAY_TARGET_CA'),
    accountId,
    region,
    refreshIntervalMs,
  };
}
