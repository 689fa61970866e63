/**
 * What a client certificate's key may be used for: keyUsage (RFC 5280 §4.2.1.3) and extendedKeyUsage
 * (§4.2.1.12). A TLS client proves it holds its key by signing the handshake (CertificateVerify,
 * RFC 8446 §4.4.3, RFC 5246 §7.4.8), so servers refuse a certificate whose keyUsage lacks
 * digitalSignature, or whose extended key usage lacks clientAuth, as "unsuitable certificate
 * purpose" (OpenSSL's X509_V_ERR_INVALID_PURPOSE). Refused at upload, such a certificate cannot
 * fail every forward later.
 */
import type { X509Certificate } from 'node:crypto';
import { type Extension, Extensions, id_ce_keyUsage, KeyUsage, KeyUsageFlags } from '@peculiar/asn1-x509';
import { parseAsn1 } from './asn1.js';
import { CertificateError } from './errors.js';
import { decodeCertificate } from './summary.js';

/** clientAuth (RFC 5280 §4.2.1.12) and anyExtendedKeyUsage. */
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

/** True when `extensions` hold no keyUsage, or one with the digitalSignature bit. */
function allowsSigning(extensions: readonly Extension[]): boolean {
  const extension = extensions.find((e) => e.extnID === id_ce_keyUsage);
  if (!extension) return true;
  const usage = parseAsn1(extension.extnValue.buffer, KeyUsage, 'The keyUsage extension');
  return (usage.toNumber() & KeyUsageFlags.digitalSignature) !== 0;
}

function signingRefused(subject: string): CertificateError {
  return new CertificateError(
    'digital_signature_not_allowed',
    `${subject} has a key usage without digitalSignature, so servers will refuse it as a client ` +
      'certificate: a TLS client signs the handshake with its key.',
  );
}

/**
 * Checks that `cert` may be presented as a TLS client certificate: an extendedKeyUsage, when
 * present, allows clientAuth or anyExtendedKeyUsage; a keyUsage, when present, has digitalSignature.
 *
 * @throws CertificateError `client_auth_not_allowed`, `digital_signature_not_allowed`,
 *   `unsupported_format` (a keyUsage extension that does not decode).
 */
export function checkClientUsage(cert: X509Certificate): void {
  const eku = cert.keyUsage;
  if (eku && !eku.includes(CLIENT_AUTH) && !eku.includes(ANY_EKU)) {
    throw new CertificateError(
      'client_auth_not_allowed',
      'The certificate has an extended key usage without clientAuth, so servers will refuse it as a client certificate.',
    );
  }
  if (!allowsSigning(decodeCertificate(cert).tbsCertificate.extensions ?? [])) {
    throw signingRefused('The certificate');
  }
}

/**
 * Checks the extensions a CSR asks for (the PKCS#9 extensionRequest attribute's value, DER
 * `Extensions`, RFC 2985 §5.4.2): a requested keyUsage must include digitalSignature.
 *
 * @throws CertificateError `digital_signature_not_allowed`, `unsupported_format` (the value does not
 *   decode).
 */
export function checkRequestedKeyUsage(extensionsDer: ArrayBuffer): void {
  const extensions = parseAsn1(extensionsDer, Extensions, 'The requested extensions');
  if (!allowsSigning(extensions)) throw signingRefused('The request');
}
