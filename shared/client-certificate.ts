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

/** The ARN API Gateway gives a client certificate (no account in it). */
export function clientCertificateArn(region: string, id: string): string {
  return `arn:aws:apigateway:${region}::/clientcertificates/${id}`;
}
