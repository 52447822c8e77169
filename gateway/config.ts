import { parseArgs } from 'node:util';
import { ConfigError, DEFAULT_GATEWAY_LISTEN, HOST_PORT, type Config } from '../shared/config.js';
import { CLIENT_CERTIFICATE_ID } from '../shared/ids.js';
import { isAwsRegion } from '../shared/regions.js';
import { AWS_REGION } from '../shared/validation.js';

export { DEFAULT_GATEWAY_LISTEN } from '../shared/config.js';

/**
 * What `npm run gateway` runs with: each option from its flag, else its GATEWAY_* variable (entries of the
 * configuration schema in shared/config.ts, documented in docs/configuration.md), else the default.
 */
export interface GatewayConfig {
  /** --client-certificate-id / GATEWAY_CLIENT_CERTIFICATE_ID (required). */
  clientCertificateId: string;
  /** --target / GATEWAY_TARGET (required): `https://host:port[/base]`. */
  target: URL;
  /** --listen / GATEWAY_LISTEN: `host:port`. */
  listenHost: string;
  listenPort: number;
  /** --target-ca / GATEWAY_TARGET_CA: PEM file the target's certificate is checked against (default: system CAs). */
  targetCaFile: string | undefined;
  /** --account / GATEWAY_ACCOUNT (default DEFAULT_ACCOUNT_ID). */
  accountId: string;
  /** --region / GATEWAY_REGION (default DEFAULT_REGION). */
  region: string;
  /** GATEWAY_REFRESH_MS: how often the gateway checks that the certificate still exists. */
  refreshIntervalMs: number;
  /** GATEWAY_ALLOWED_HOSTS: `Host` values it answers; undefined: its listen address. */
  allowedHosts: string[] | undefined;
}

/** The part of the service's configuration the gateway reads. */
export type GatewayVariables = Pick<
  Config,
  | 'gatewayClientCertificateId'
  | 'gatewayTarget'
  | 'gatewayAllowedHosts'
  | 'gatewayListen'
  | 'gatewayTargetCa'
  | 'gatewayAccount'
  | 'gatewayRegion'
  | 'gatewayRefreshMs'
  | 'defaultAccountId'
  | 'defaultRegion'
>;

/**
 * Lays the command-line flags in `argv` over `config` (from `loadConfig`) and checks what the gateway
 * needs. Pure.
 * @throws ConfigError naming every flag or variable that is missing or wrong.
 */
export function loadGatewayConfig(argv: string[], config: GatewayVariables): GatewayConfig {
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
  /** The flag when given (blank counts as unset), else the variable's value (already trimmed). */
  const pick = (flag: keyof typeof values, variable: string | undefined) => {
    const v = values[flag];
    return v === undefined ? variable : v.trim() || undefined;
  };
  const problems: string[] = [];
  const id = pick('client-certificate-id', config.gatewayClientCertificateId);
  if (id === undefined) problems.push('--client-certificate-id (GATEWAY_CLIENT_CERTIFICATE_ID) is required');
  else if (!CLIENT_CERTIFICATE_ID.test(id)) {
    problems.push(`--client-certificate-id must be a client certificate id, got ${JSON.stringify(id)}`);
  }
  const targetText = pick('target', config.gatewayTarget);
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
  const listen = pick('listen', config.gatewayListen) ?? DEFAULT_GATEWAY_LISTEN;
  const m = HOST_PORT.exec(listen);
  const listenPort = m ? Number(m[2]) : NaN;
  if (!m || listenPort > 65535) {
    problems.push(`--listen (GATEWAY_LISTEN) must be host:port, got ${JSON.stringify(listen)}`);
  }
  const accountId = pick('account', config.gatewayAccount) ?? config.defaultAccountId;
  if (!/^\d{12}$/.test(accountId))
    problems.push(`--account (GATEWAY_ACCOUNT) must be 12 digits, got ${JSON.stringify(accountId)}`);
  const region = pick('region', config.gatewayRegion) ?? config.defaultRegion;
  if (!AWS_REGION.test(region)) {
    problems.push(`--region (GATEWAY_REGION) must look like an AWS region, got ${JSON.stringify(region)}`);
  } else if (!isAwsRegion(region)) {
    problems.push(
      `--region (GATEWAY_REGION) must be a region that exists in the AWS SDK's partition data, such as us-east-1, got ${JSON.stringify(region)}`,
    );
  }
  if (problems.length) throw new ConfigError(`invalid gateway configuration: ${problems.join('; ')}`);
  return {
    clientCertificateId: id!,
    target: target!,
    listenHost: m![1]!.replace(/^\[|\]$/g, ''),
    listenPort,
    targetCaFile: pick('target-ca', config.gatewayTargetCa),
    accountId,
    region,
    refreshIntervalMs: config.gatewayRefreshMs,
    allowedHosts: config.gatewayAllowedHosts
      ?.split(',')
      .map((h) => h.trim())
      .filter(Boolean),
  };
}
