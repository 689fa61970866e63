/**
 * Column conventions shared by the aggregates (see tables.ts): instants as integer milliseconds,
 * booleans as 0/1, binary as Buffer, certificate summaries and chains as JSON text, sealed secrets as
 * four columns.
 */
import { AppError } from '../errors/app-error.js';
import type { CertificateSummary, ChainEntry, SealedSecret } from './types.js';

/** Milliseconds since the epoch. @throws AppError `bad_request` for an invalid Date. */
export function toMs(date: Date): number {
  const ms = date.getTime();
  if (Number.isNaN(ms)) throw new AppError('bad_request', 'Invalid date.');
  return ms;
}

export function optionalMs(date: Date | undefined): number | null {
  return date === undefined ? null : toMs(date);
}

/** PostgreSQL int8 arrives as a number (see postgres.ts); Number() also covers a string or bigint. */
export function fromMs(value: number | string | bigint): Date {
  return new Date(Number(value));
}

function toIso(date: Date): string {
  return new Date(toMs(date)).toISOString();
}

export function toFlag(value: boolean): number {
  return value ? 1 : 0;
}

export function fromFlag(value: number): boolean {
  return Number(value) !== 0;
}

/** Both drivers return Buffer; a plain Uint8Array is copied into one all the same. */
export function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value);
}

/** The four columns of a sealed secret (identity versions, the platform CA). */
export interface SealedColumns {
  ciphertext: Uint8Array;
  iv: Uint8Array;
  wrapped_dek: Uint8Array;
  kek_id: string;
}

/** Both drivers return Buffer (see {@link asBuffer}). */
export function sealedFromRow(row: SealedColumns): SealedSecret {
  return {
    ciphertext: asBuffer(row.ciphertext),
    iv: asBuffer(row.iv),
    wrappedDek: asBuffer(row.wrapped_dek),
    kekId: row.kek_id,
  };
}

/** Copies the four fields, nothing else. */
export function sealedToRow(secret: SealedSecret): {
  ciphertext: Buffer;
  iv: Buffer;
  wrapped_dek: Buffer;
  kek_id: string;
} {
  return {
    ciphertext: secret.ciphertext,
    iv: secret.iv,
    wrapped_dek: secret.wrappedDek,
    kek_id: secret.kekId,
  };
}

/** CertificateSummary as stored: instants as RFC 3339 strings. */
type SummaryJson = Omit<CertificateSummary, 'notBefore' | 'notAfter'> & {
  notBefore: string;
  notAfter: string;
};
type ChainEntryJson = Omit<ChainEntry, 'notAfter'> & { notAfter: string };

/**
 * Copies the summary field by field rather than spreading it, so that nothing a caller attached to
 * the object (a key, a password) can ride along into the database.
 */
export function summaryToJson(s: CertificateSummary): string {
  const json: SummaryJson = {
    subject: s.subject,
    issuer: s.issuer,
    serialNumber: s.serialNumber,
    fingerprintSha256: s.fingerprintSha256,
    spkiSha256: s.spkiSha256,
    notBefore: toIso(s.notBefore),
    notAfter: toIso(s.notAfter),
    keyType: s.keyType,
    signatureAlgorithm: s.signatureAlgorithm,
    subjectAltNames: [...s.subjectAltNames],
  };
  if (s.keySize !== undefined) json.keySize = s.keySize;
  if (s.curve !== undefined) json.curve = s.curve;
  return JSON.stringify(json);
}

export function summaryFromJson(text: string): CertificateSummary {
  const json = JSON.parse(text) as SummaryJson;
  return { ...json, notBefore: new Date(json.notBefore), notAfter: new Date(json.notAfter) };
}

export function chainToJson(chain: ChainEntry[]): string {
  const json: ChainEntryJson[] = chain.map((c) => ({
    subject: c.subject,
    issuer: c.issuer,
    notAfter: toIso(c.notAfter),
    fingerprintSha256: c.fingerprintSha256,
  }));
  return JSON.stringify(json);
}

export function chainFromJson(text: string): ChainEntry[] {
  const json = JSON.parse(text) as ChainEntryJson[];
  return json.map((c) => ({ ...c, notAfter: new Date(c.notAfter) }));
}
