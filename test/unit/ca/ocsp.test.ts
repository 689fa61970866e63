import { createHash, generateKeyPairSync, webcrypto } from 'node:crypto';
import {
  BasicOCSPResponse,
  CertID,
  id_pkix_ocsp_nonce,
  OCSPRequest,
  OCSPResponse,
  OCSPResponseStatus,
  Request,
  TBSRequest,
} from '@peculiar/asn1-ocsp';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate, Extension } from '@peculiar/asn1-x509';
import { beforeAll, describe, expect, test } from 'vitest';
import { signAsn1, x509 } from '../../../src/ca/crypto.js';
import { MAX_OCSP_REQUESTS, OcspResponder } from '../../../src/ca/ocsp.js';
import type { IssuedCertificateStatus } from '../../../src/store/index.js';
import { ManualClock } from '../../helpers/lifecycle.js';

const SHA1 = '1.3.14.3.2.26';
const SHA256 = '2.16.840.1.101.3.4.2.1';

/** A self-signed issuing CA in memory, and the CertID inputs of its name and key. */
async function issuingCa() {
  const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Unit Issuing CA',
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  });
  const der = Buffer.from(cert.rawData);
  const tbs = AsnConvert.parse(der, Certificate).tbsCertificate;
  return {
    der,
    key: keys.privateKey,
    nameDer: Buffer.from(AsnConvert.serialize(tbs.subject)),
    keyBits: Buffer.from(tbs.subjectPublicKeyInfo.subjectPublicKey),
  };
}

type Ca = Awaited<ReturnType<typeof issuingCa>>;

function certId(ca: Pick<Ca, 'nameDer' | 'keyBits'>, serialHex: string, hash = SHA1): CertID {
  const name = hash === SHA1 ? 'sha1' : 'sha256';
  return new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: hash, parameters: null }),
    issuerNameHash: new OctetString(createHash(name).update(ca.nameDer).digest()),
    issuerKeyHash: new OctetString(createHash(name).update(ca.keyBits).digest()),
    // A copy: a small Buffer's .buffer is Node's shared pool.
    serialNumber: new Uint8Array(Buffer.from(serialHex, 'hex')).buffer,
  });
}

function requestDer(ids: CertID[], nonce?: Buffer): Buffer {
  const extensions = nonce
    ? [
        new Extension({
          extnID: id_pkix_ocsp_nonce,
          extnValue: new OctetString(AsnConvert.serialize(new OctetString(nonce))),
        }),
      ]
    : undefined;
  const tbsRequest = new TBSRequest({
    requestList: ids.map((reqCert) => new Request({ reqCert })),
    ...(extensions ? { requestExtensions: extensions } : {}),
  });
  return Buffer.from(AsnConvert.serialize(new OCSPRequest({ tbsRequest })));
}

function basicOf(der: Buffer): BasicOCSPResponse {
  const response = AsnConvert.parse(der, OCSPResponse);
  expect(response.responseStatus).toBe(OCSPResponseStatus.successful);
  return AsnConvert.parse(response.responseBytes?.response.buffer ?? new ArrayBuffer(0), BasicOCSPResponse);
}

describe('OcspResponder', () => {
  let ca: Ca;
  let responder: OcspResponder;
  const statuses = new Map<string, IssuedCertificateStatus>();

  beforeAll(async () => {
    ca = await issuingCa();
    statuses.set('0A0B', {});
    statuses.set('0C0D', { revokedAt: new Date('2026-01-02T03:04:05.678Z'), reason: 'keyCompromise' });
    responder = new OcspResponder({
      issuer: {
        chainDer: async () => [ca.der],
        signAsIssuing: (data) => signAsn1(ca.key, { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams, data),
      },
      statuses: { getIssuedCertificateStatus: async (serial) => statuses.get(serial) },
      clock: new ManualClock(Date.parse('2026-06-01T00:00:00.500Z')),
    });
  });

  test('good, revoked (time to the second, reason) and unknown, with SHA-1 and SHA-256 CertIDs', async () => {
    const basic = basicOf(
      await responder.respond(
        requestDer([
          certId(ca, '0a0b'),
          certId(ca, '00' + '0c0d', SHA256),
          certId(ca, '0e0f'),
          certId({ nameDer: Buffer.from('other'), keyBits: ca.keyBits }, '0a0b'),
        ]),
      ),
    );
    const [good, revoked, unissued, otherIssuer] = basic.tbsResponseData.responses;
    expect(good?.certStatus.good).toBeNull();
    expect(revoked?.certStatus.revoked?.revocationTime.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(revoked?.certStatus.revoked?.revocationReason?.reason).toBe(1);
    expect(unissued?.certStatus.unknown).toBeNull();
    expect(otherIssuer?.certStatus.unknown).toBeNull();
    expect(good?.thisUpdate.toISOString()).toBe('2026-06-01T00:00:00.000Z');
    expect(good?.nextUpdate?.toISOString()).toBe('2026-06-01T01:00:00.000Z');
    // Signed by the issuing key over the DER tbsResponseData.
    const signed = await new x509.X509Certificate(ca.der).publicKey.export();
    const raw = new x509.AsnEcSignatureFormatter().toWebSignature(
      { name: 'ECDSA', hash: 'SHA-256', namedCurve: 'P-256' } as EcdsaParams,
      basic.signature,
    );
    const ok = await webcrypto.subtle.verify(
      { name: 'ECDSA', hash: 'SHA-256' },
      signed,
      raw ?? new ArrayBuffer(0),
      AsnConvert.serialize(basic.tbsResponseData),
    );
    expect(ok).toBe(true);
  });

  test('a nonce of 1 to 32 octets is echoed; a longer one is left out (RFC 8954)', async () => {
    const nonceOf = async (bytes: number) =>
      basicOf(
        await responder.respond(requestDer([certId(ca, '0a0b')], Buffer.alloc(bytes, 7))),
      ).tbsResponseData.responseExtensions?.find((e) => e.extnID === id_pkix_ocsp_nonce);
    const echoed = await nonceOf(32);
    expect(
      Buffer.from(AsnConvert.parse(echoed?.extnValue.buffer ?? new ArrayBuffer(0), OctetString).buffer),
    ).toEqual(Buffer.alloc(32, 7));
    expect(await nonceOf(1)).toBeDefined();
    expect(await nonceOf(33)).toBeUndefined();
  });

  test('malformed, empty and oversized requests get malformedRequest, never an exception', async () => {
    const malformed = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);
    const many = Array.from({ length: MAX_OCSP_REQUESTS + 1 }, () => certId(ca, '0a0b'));
    const inputs = [Buffer.alloc(0), Buffer.from('junk'), requestDer([]), requestDer(many)];
    for (const input of inputs) expect(await responder.respond(input)).toEqual(malformed);
    expect(AsnConvert.parse(OcspResponder.internalError(), OCSPResponse).responseStatus).toBe(
      OCSPResponseStatus.internalError,
    );
  });

  test('an RSA key signs too (PKCS#1 v1.5 signature carried as is)', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const key = await webcrypto.subtle.importKey(
      'pkcs8',
      privateKey.export({ type: 'pkcs8', format: 'der' }),
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      false,
      ['sign'],
    );
    const signed = await signAsn1(key, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, Buffer.from('tbs'));
    expect(signed.algorithm.algorithm).toBe('1.2.840.113549.1.1.11');
    expect(signed.signature.byteLength).toBe(256);
  });
});
