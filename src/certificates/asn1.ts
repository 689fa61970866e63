/**
 * ASN.1 types this folder needs that @peculiar/asn1-* does not define, and parsing helpers that turn
 * any decoder exception into `unsupported_format`. Types are declared with asn1-schema's decorator
 * functions applied by hand, because the project compiles without `experimentalDecorators`.
 */

import { ContentInfo } from '@peculiar/asn1-cms';
import { MacData } from '@peculiar/asn1-pfx';
import {
  AsnArray,
  AsnConvert,
  AsnProp,
  AsnPropTypes,
  AsnType,
  AsnTypeTypes,
  OctetString,
} from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import forge from 'node-forge';
import { CertificateError } from './errors.js';

type Ctor<T> = new () => T;

/** Parses DER/BER `data` as `type`; any decoder failure is `unsupported_format` with `what` named. */
export function parseAsn1<T>(data: Uint8Array | ArrayBuffer, type: Ctor<T>, what: string): T {
  try {
    // A Buffer's backing store is typed ArrayBufferLike; asn1-schema only reads it.
    return AsnConvert.parse(data as BufferSource, type);
  } catch (err) {
    throw new CertificateError('unsupported_format', `${what} is not valid ASN.1.`, { cause: err });
  }
}

/**
 * The content of an OCTET STRING given as a whole TLV, primitive or constructed. PKCS#12 is BER
 * (RFC 7292 §4), and Java and Windows write constructed, indefinite-length OCTET STRINGs that
 * asn1-schema's OctetString reads as empty; node-forge's BER decoder joins the segments.
 */
export function octetStringContent(tlv: ArrayBuffer | Uint8Array, what: string): Buffer {
  let node: forge.asn1.Asn1;
  try {
    const bytes = Buffer.from(tlv instanceof Uint8Array ? tlv : new Uint8Array(tlv));
    node = forge.asn1.fromDer(forge.util.createBuffer(bytes.toString('binary')), {
      strict: false,
      parseAllBytes: true,
      decodeBitStrings: false,
    } as unknown as boolean);
  } catch (err) {
    throw new CertificateError('unsupported_format', `${what} is not valid ASN.1.`, { cause: err });
  }
  const parts: string[] = [];
  const collect = (n: forge.asn1.Asn1, depth: number): void => {
    if (n.tagClass !== forge.asn1.Class.UNIVERSAL || n.type !== forge.asn1.Type.OCTETSTRING || depth > 8) {
      throw new CertificateError('unsupported_format', `${what} is not an OCTET STRING.`);
    }
    if (Array.isArray(n.value)) {
      for (const child of n.value) collect(child, depth + 1);
    } else {
      parts.push(n.value);
    }
  };
  collect(node, 0);
  return Buffer.from(parts.join(''), 'binary');
}

/** The bytes of an asn1-schema OctetString as a Buffer (no copy). */
export function octets(value: OctetString | ArrayBuffer): Buffer {
  return value instanceof OctetString ? Buffer.from(value.buffer) : Buffer.from(value);
}

function define<T>(
  type: Ctor<T>,
  kind: AsnTypeTypes,
  props: [keyof T & string, Parameters<typeof AsnProp>[0]][],
): void {
  for (const [name, options] of props) AsnProp(options)(type.prototype as object, name);
  AsnType({ type: kind })(type);
}

/**
 * RFC 8018 §A.2:
 * `PBKDF2-params ::= SEQUENCE { salt CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier },
 *   iterationCount INTEGER, keyLength INTEGER OPTIONAL, prf AlgorithmIdentifier DEFAULT hmacWithSHA1 }`.
 * Only the `specified` salt is supported (nothing uses `otherSource`).
 */
export class Pbkdf2Params {
  salt = new OctetString();
  iterationCount = 0;
  keyLength?: number;
  prf?: AlgorithmIdentifier;
}
define(Pbkdf2Params, AsnTypeTypes.Sequence, [
  ['salt', { type: OctetString }],
  ['iterationCount', { type: AsnPropTypes.Integer }],
  ['keyLength', { type: AsnPropTypes.Integer, optional: true }],
  ['prf', { type: AlgorithmIdentifier, optional: true }],
]);

/** RFC 8018 §A.4: `PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier, encryptionScheme AlgorithmIdentifier }`. */
export class Pbes2Params {
  keyDerivationFunc = new AlgorithmIdentifier();
  encryptionScheme = new AlgorithmIdentifier();
}
define(Pbes2Params, AsnTypeTypes.Sequence, [
  ['keyDerivationFunc', { type: AlgorithmIdentifier }],
  ['encryptionScheme', { type: AlgorithmIdentifier }],
]);

/** RFC 8018 §A.5 (used by RFC 9579): `PBMAC1-params ::= SEQUENCE { keyDerivationFunc, messageAuthScheme }`. */
export class Pbmac1Params {
  keyDerivationFunc = new AlgorithmIdentifier();
  messageAuthScheme = new AlgorithmIdentifier();
}
define(Pbmac1Params, AsnTypeTypes.Sequence, [
  ['keyDerivationFunc', { type: AlgorithmIdentifier }],
  ['messageAuthScheme', { type: AlgorithmIdentifier }],
]);

/** RFC 7292 Appendix C: `pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }`. */
export class Pkcs12PbeParams {
  salt = new OctetString();
  iterations = 0;
}
define(Pkcs12PbeParams, AsnTypeTypes.Sequence, [
  ['salt', { type: OctetString }],
  ['iterations', { type: AsnPropTypes.Integer }],
]);

/**
 * RFC 5652 §8: `EncryptedData ::= SEQUENCE { version, encryptedContentInfo, unprotectedAttrs [1] OPTIONAL }`.
 * The content info is kept raw and read by {@link EncryptedContentInfoRaw} so that a constructed
 * `[0]` encryptedContent (BER) can be joined by {@link implicitOctetStringContent}.
 */
export class EncryptedData {
  version = 0;
  encryptedContentInfo = new ArrayBuffer(0);
  unprotectedAttrs?: ArrayBuffer;
}
define(EncryptedData, AsnTypeTypes.Sequence, [
  ['version', { type: AsnPropTypes.Integer }],
  ['encryptedContentInfo', { type: AsnPropTypes.Any }],
  // Tagged [1]; declared untagged because asn1-schema cannot re-tag ANY, and nothing here reads it.
  ['unprotectedAttrs', { type: AsnPropTypes.Any, optional: true }],
]);

/**
 * RFC 5652 §6.1: `EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm,
 * encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }`, with the content kept as raw TLV.
 */
export class EncryptedContentInfoRaw {
  contentType = '';
  contentEncryptionAlgorithm = new AlgorithmIdentifier();
  encryptedContent?: ArrayBuffer;
}
define(EncryptedContentInfoRaw, AsnTypeTypes.Sequence, [
  ['contentType', { type: AsnPropTypes.ObjectIdentifier }],
  ['contentEncryptionAlgorithm', { type: AlgorithmIdentifier }],
  // Tagged [0] IMPLICIT; kept as raw TLV and read by implicitOctetStringContent().
  ['encryptedContent', { type: AsnPropTypes.Any, optional: true }],
]);

/**
 * RFC 5958 §3: `EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData OCTET STRING }`,
 * with the data kept as raw TLV (see {@link octetStringContent}).
 */
export class EncryptedPrivateKeyInfoRaw {
  encryptionAlgorithm = new AlgorithmIdentifier();
  encryptedData = new ArrayBuffer(0);
}
define(EncryptedPrivateKeyInfoRaw, AsnTypeTypes.Sequence, [
  ['encryptionAlgorithm', { type: AlgorithmIdentifier }],
  ['encryptedData', { type: AsnPropTypes.Any }],
]);

/**
 * The content of an `[n] IMPLICIT OCTET STRING` given as its raw TLV: the tag is rewritten to the
 * universal OCTET STRING tag (keeping the constructed bit) and read by {@link octetStringContent}.
 */
export function implicitOctetStringContent(tlv: ArrayBuffer, what: string): Buffer {
  const bytes = Buffer.from(new Uint8Array(tlv));
  if (bytes.length === 0) throw new CertificateError('unsupported_format', `${what} is empty.`);
  const copy = Buffer.from(bytes);
  copy[0] = ((copy[0] ?? 0) & 0x20) | 0x04;
  return octetStringContent(copy, what);
}

/**
 * RFC 7292 §4: `PFX ::= SEQUENCE { version INTEGER, authSafe ContentInfo, macData MacData OPTIONAL }`.
 * asn1-pfx's PFX gives a missing macData a default value, which would make a MAC-less file look like
 * one with an empty MAC; here an absent macData stays undefined.
 */
export class Pfx {
  version = 0;
  authSafe = new ContentInfo();
  macData?: MacData;
}
define(Pfx, AsnTypeTypes.Sequence, [
  ['version', { type: AsnPropTypes.Integer }],
  ['authSafe', { type: ContentInfo }],
  ['macData', { type: MacData, optional: true }],
]);

/** RFC 5280 §4.1: the outer `Certificate` SEQUENCE, without decoding the TBSCertificate. */
export class CertificateOuter {
  tbsCertificate = new ArrayBuffer(0);
  signatureAlgorithm = new AlgorithmIdentifier();
  signatureValue = new ArrayBuffer(0);
}
define(CertificateOuter, AsnTypeTypes.Sequence, [
  ['tbsCertificate', { type: AsnPropTypes.Any }],
  ['signatureAlgorithm', { type: AlgorithmIdentifier }],
  ['signatureValue', { type: AsnPropTypes.BitString }],
]);

/** `SEQUENCE OF ANY`: reads GeneralNames one element at a time, so one odd name cannot hide the rest. */
export class AnySequence extends AsnArray<ArrayBuffer> {}
AsnType({ type: AsnTypeTypes.Sequence, itemType: AsnPropTypes.Any })(AnySequence);

/** Attribute values that asn1-x509's AttributeValue leaves as `anyValue`. */
export class OtherString {
  numericString?: string;
  visibleString?: string;
}
define(OtherString, AsnTypeTypes.Choice, [
  ['numericString', { type: AsnPropTypes.NumericString }],
  ['visibleString', { type: AsnPropTypes.VisibleString }],
]);
