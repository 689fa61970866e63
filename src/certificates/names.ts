/**
 * Distinguished names and subject alternative names as strings, read from the DER with
 * @peculiar/asn1-x509 (RFC 5280 §4.1.2.4, §4.2.1.6).
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, GeneralName, type Name } from '@peculiar/asn1-x509';
import { AnySequence, OtherString } from './asn1.js';

/** Attribute types with an RFC 4514 §3 short name; every other type is written as a dotted OID. */
const SHORT_NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.6': 'C',
  '2.5.4.9': 'STREET',
  '0.9.2342.19200300.100.1.25': 'DC',
  '0.9.2342.19200300.100.1.1': 'UID',
};

/** Escapes an attribute value as RFC 4514 §2.4 requires. */
function escapeValue(value: string): string {
  const chars = [...value];
  return chars
    .map((c, i) => {
      if ('\\"+,;<>'.includes(c)) return `\\${c}`;
      if (c === '\0') return '\\00';
      if ((i === 0 && (c === ' ' || c === '#')) || (i === chars.length - 1 && c === ' ')) return `\\${c}`;
      return c;
    })
    .join('');
}

type AttributeValueLike = {
  utf8String?: string;
  printableString?: string;
  teletexString?: string;
  bmpString?: string;
  universalString?: string;
  ia5String?: string;
  anyValue?: ArrayBuffer;
};

function valueString(value: AttributeValueLike): string {
  for (const s of [
    value.utf8String,
    value.printableString,
    value.ia5String,
    value.teletexString,
    value.bmpString,
    value.universalString,
  ]) {
    if (s !== undefined) return escapeValue(s);
  }
  if (value.anyValue) {
    try {
      const other = AsnConvert.parse(value.anyValue, OtherString);
      const s = other.numericString ?? other.visibleString;
      if (s !== undefined) return escapeValue(s);
    } catch {
      // not a string type: hex form below
    }
    // RFC 4514 §2.4: a value that is not a string is '#' and the hex of its BER encoding.
    return `#${Buffer.from(value.anyValue).toString('hex')}`;
  }
  return '';
}

/**
 * Formats a Name as an RFC 4514 string: most specific RDN first (`CN=leaf,O=Example,C=US`),
 * multi-valued RDNs joined with `+`, short names from RFC 4514 §3 and dotted OIDs for the rest.
 * String values of unnamed types are written as strings (as OpenSSL and pyca do), not `#hex`.
 */
export function formatName(name: Name): string {
  return [...name]
    .reverse()
    .map((rdn) =>
      [...rdn].map((atv) => `${SHORT_NAMES[atv.type] ?? atv.type}=${valueString(atv.value)}`).join('+'),
    )
    .join(',');
}

function formatGeneralName(gn: GeneralName): string {
  if (gn.dNSName !== undefined) return `DNS:${gn.dNSName}`;
  // asn1-x509 already writes the address as text (IPv6 compressed as RFC 5952 asks).
  if (gn.iPAddress !== undefined) return `IP:${gn.iPAddress}`;
  if (gn.uniformResourceIdentifier !== undefined) return `URI:${gn.uniformResourceIdentifier}`;
  if (gn.rfc822Name !== undefined) return `email:${gn.rfc822Name}`;
  if (gn.directoryName !== undefined) return `DirName:${formatName(gn.directoryName)}`;
  if (gn.registeredID !== undefined) return `RID:${gn.registeredID}`;
  if (gn.otherName !== undefined) return `othername:${gn.otherName.typeId}`;
  return 'other';
}

/**
 * Formats the GeneralNames of a subjectAltName extension value (`extnValue` content) as
 * `DNS:a.example`, `IP:127.0.0.1`, `IP:2001:db8::1`, `URI:…`, `email:…`, `DirName:…`, `RID:…`,
 * `othername:<oid>`. Names asn1-x509 cannot decode (x400Address, ediPartyName) become `other`.
 */
export function formatSubjectAltNames(extnValue: ArrayBuffer): string[] {
  return [...AsnConvert.parse(extnValue, AnySequence)].map((item) => {
    try {
      return formatGeneralName(AsnConvert.parse(item, GeneralName));
    } catch {
      return 'other';
    }
  });
}

/** The subject of a DER certificate as an RFC 4514 string, or `(unreadable subject)`. For messages. */
export function subjectOfDer(der: Buffer): string {
  try {
    return formatName(AsnConvert.parse(der as BufferSource, Certificate).tbsCertificate.subject);
  } catch {
    return '(unreadable subject)';
  }
}
