/** CA mode's public paths on the API (no signature needed) and the URLs certificates name them by. */
export const CA_PATHS = {
  /** The CRL, DER (`application/pkix-crl`). */
  crl: '/ca/crl',
  /** The same CRL, PEM. */
  crlPem: '/ca/crl.pem',
  /** The OCSP responder: POST the DER request here, or GET it base64 after a slash. */
  ocsp: '/ca/ocsp',
  /** The issuing CA's certificate, DER (`application/pkix-cert`), for AIA caIssuers. */
  cert: '/ca/cert',
} as const;

/** The URLs under CA_PUBLIC_URL (`https://pki.example.com`, or with a base path) that certificates carry. */
export function caUrls(base: string): { crl: string; ocsp: string; caIssuers: string } {
  const b = base.replace(/\/+$/, '');
  return { crl: `${b}${CA_PATHS.crl}`, ocsp: `${b}${CA_PATHS.ocsp}`, caIssuers: `${b}${CA_PATHS.cert}` };
}
