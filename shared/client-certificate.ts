import { partitionOf } from './regions.js';

/** A client certificate as the API shows it. Never holds the private key. */
export interface ClientCertificate {
  clientCertificateId: string;
  description?: string;
  pemEncodedCertificate: string;
  /** Epoch seconds. */
  createdDate: number;
  /** Epoch seconds. */
  expirationDate: number;
  tags: Record<string, string>;
}

/**
 * A map of tag keys to values with no prototype. Tag keys come from callers, and on a `{}` a key such as
 * `__proto__` or `constructor` names a member of Object.prototype: `obj[key] = v` with `__proto__`
 * stores nothing, and `key in obj` is true for `toString` before it is set. Every tag map the service
 * builds is one of these (JSON.stringify and Object.entries read it as usual).
 */
export function tagMap(entries: Iterable<readonly [string, string]> = []): Record<string, string> {
  const map = Object.create(null) as Record<string, string>;
  for (const [k, v] of entries) map[k] = v;
  return map;
}

/** AWS issues certificates valid for exactly 365 days. */
export const VALIDITY_SECONDS = 365 * 24 * 60 * 60;

/** The plain JSON answer the AWS SDKs expect: dates as epoch seconds, no empty `tags`. */
export function toJson(c: ClientCertificate): Record<string, unknown> {
  const out: Record<string, unknown> = { clientCertificateId: c.clientCertificateId };
  if (c.description !== undefined) out.description = c.description;
  out.pemEncodedCertificate = c.pemEncodedCertificate;
  out.createdDate = c.createdDate;
  out.expirationDate = c.expirationDate;
  if (Object.keys(c.tags).length > 0) out.tags = c.tags;
  return out;
}

/** The ARN API Gateway gives a client certificate: the region's partition, no account. */
export function clientCertificateArn(region: string, id: string): string {
  return `arn:${partitionOf(region)}:apigateway:${region}::/clientcertificates/${id}`;
}

/** Where AWS's HAL `curies` point; `{rel}` is the link relation without its `clientcertificate:` prefix. */
export const HAL_CURIE = {
  href: 'https://docs.aws.amazon.com/apigateway/latest/developerguide/restapi-clientcertificate-{rel}.html',
  name: 'clientcertificate',
  templated: true,
} as const;

/** Epoch seconds as AWS's HAL dates show them: ISO-8601 UTC without milliseconds (`2016-06-15T22:33:13Z`). */
export function isoSeconds(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function recordLinks(id: string): Record<string, { href: string }> {
  const href = `/clientcertificates/${id}`;
  return {
    self: { href },
    'clientcertificate:delete': { href },
    'clientcertificate:update': { href },
  };
}

/**
 * The record as API Gateway renders it for `Accept: application/hal+json`: `_links` (with `curies`
 * unless `embedded`, since an embedded record shares its container's) and ISO-8601 dates.
 */
export function toHal(c: ClientCertificate, embedded = false): Record<string, unknown> {
  const links: Record<string, unknown> = embedded
    ? recordLinks(c.clientCertificateId)
    : { curies: HAL_CURIE, ...recordLinks(c.clientCertificateId) };
  const out: Record<string, unknown> = { _links: links, clientCertificateId: c.clientCertificateId };
  out.createdDate = isoSeconds(c.createdDate);
  if (c.description !== undefined) out.description = c.description;
  out.expirationDate = isoSeconds(c.expirationDate);
  out.pemEncodedCertificate = c.pemEncodedCertificate;
  if (Object.keys(c.tags).length > 0) out.tags = c.tags;
  return out;
}

/**
 * A page of records in HAL: the records under `_embedded.item`, their links under `_links.item`, and,
 * when more follow, `position` plus a `next` link carrying it and the page size the caller asked for
 * (`limit`, when it asked), so following `next` walks pages of the same size.
 */
export function toHalList(
  items: ClientCertificate[],
  position?: string,
  limit?: number,
): Record<string, unknown> {
  const links: Record<string, unknown> = {
    curies: HAL_CURIE,
    self: { href: '/clientcertificates' },
    item: items.map((c) => ({ href: `/clientcertificates/${c.clientCertificateId}` })),
    'clientcertificate:by-id': { href: '/clientcertificates/{clientcertificate_id}', templated: true },
    'clientcertificate:generate': { href: '/clientcertificates' },
  };
  if (position !== undefined) {
    const size = limit === undefined ? '' : `limit=${limit}&`;
    links.next = { href: `/clientcertificates?${size}position=${encodeURIComponent(position)}` };
  }
  const out: Record<string, unknown> = {
    _links: links,
    _embedded: { item: items.map((c) => toHal(c, true)) },
  };
  if (position !== undefined) out.position = position;
  return out;
}

/** `arn:{partition}:{service}:{region}:{account}:{resource}`; API Gateway's resource part starts with `/`. */
const ARN =
  /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc):([a-z0-9-]+):([a-z0-9-]*):(\d{12})?:(.+)$/;
const CLIENT_CERTIFICATE_RESOURCE = /^\/clientcertificates\/([^/]+)$/;

/** Why an ARN does not name a client certificate the caller may address. */
export type ArnProblem = 'malformed' | 'service' | 'partition' | 'account' | 'resource' | 'region';

/**
 * Reads a client certificate's id out of its ARN, checking that the ARN is well formed, names an
 * API Gateway client certificate, and lies in `region`. The id itself is not checked here: an
 * ill-formed id names no certificate, which is a 404 rather than a bad ARN.
 */
export function parseClientCertificateArn(
  arn: string,
  region: string,
): { id: string } | { problem: ArnProblem; arnRegion?: string; arnPartition?: string; partition?: string } {
  const m = ARN.exec(arn);
  if (!m) return { problem: 'malformed' };
  const [, partition, service, arnRegion, account, resource] = m as unknown as [
    string,
    string,
    string,
    string,
    string | undefined,
    string,
  ];
  if (service !== 'apigateway') return { problem: 'service' };
  // Only the form clientCertificateArn() issues: the region's partition, no account (API Gateway ARNs carry none).
  const expected = partitionOf(region);
  if (partition !== expected) return { problem: 'partition', arnPartition: partition, partition: expected };
  if (account !== undefined) return { problem: 'account' };
  const r = CLIENT_CERTIFICATE_RESOURCE.exec(resource);
  if (!r) return { problem: 'resource' };
  if (arnRegion !== region) return { problem: 'region', arnRegion };
  return { id: r[1] as string };
}
