/**
 * The platform CA's OCSP responder (RFC 6960): answers whether certificates of the issuing CA are
 * good, revoked (with time and reason) or unknown, in responses signed by the issuing CA itself
 * (RFC 6960 §4.2.2.2: the CA that issued the certificate in question may sign), so that relying
 * parties need no other certificate. The request and response structures are @peculiar/asn1-ocsp's.
 *
 * Nothing a client sends reaches the process as an exception: a request that does not decode, has
 * no or too many certificate requests, gets the `malformedRequest` status (§2.3).
 */
import { createHash } from 'node:crypto';
import {
  BasicOCSPResponse,
  type CertID,
  CertStatus,
  id_pkix_ocsp_basic,
  id_pkix_ocsp_nonce,
  KeyHash,
  OCSPRequest,
  OCSPResponse,
  OCSPResponseStatus,
  ResponderID,
  ResponseBytes,
  ResponseData,
  RevokedInfo,
  SingleResponse,
} from '@peculiar/asn1-ocsp';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  type AlgorithmIdentifier,
  Certificate,
  CRLReason,
  CRLReasons,
  type Extension,
} from '@peculiar/asn1-x509';
import type { Clock } from '../shared/clock.js';
import type { IssuedCertificateStatus, RevocationReason } from '../store/index.js';

/** thisUpdate → nextUpdate (RFC 6960 §4.2.2.1): a relying party asks again within the hour. */
export const OCSP_VALIDITY_MS = 60 * 60_000;
/** Most certificates one request may ask about; more is refused as malformed (each costs a lookup). */
export const MAX_OCSP_REQUESTS = 20;
/** RFC 8954 §2.1: nonces of 1 to 32 octets are echoed; others are left out of the response. */
const MAX_NONCE_BYTES = 32;

/** CertID hash algorithms by OID (RFC 6960 §4.1.1; SHA-1 is what most clients still send). */
const HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

const REASONS: Record<RevocationReason, CRLReasons> = {
  unspecified: CRLReasons.unspecified,
  keyCompromise: CRLReasons.keyCompromise,
  affiliationChanged: CRLReasons.affiliationChanged,
  superseded: CRLReasons.superseded,
  cessationOfOperation: CRLReasons.cessationOfOperation,
};

/** What the responder needs of the platform CA: its issuing certificate and its key, to sign. */
export interface OcspIssuer {
  /** The issuing CA then the root, DER (PlatformCa.chainDer). */
  chainDer(): Promise<Buffer[]>;
  /** Signs tbsResponseData (PlatformCa.signAsIssuing). */
  signAsIssuing(data: ArrayBuffer): Promise<{ algorithm: AlgorithmIdentifier; signature: ArrayBuffer }>;
}

export interface OcspResponderDeps {
  issuer: OcspIssuer;
  /** The issued certificates' revocation state by serial (ClientCertificateStore). */
  statuses: {
    getIssuedCertificateStatus(serialNumber: string): Promise<IssuedCertificateStatus | undefined>;
  };
  clock: Clock;
}

/** The issuing CA's name and key as CertIDs hash them (RFC 6960 §4.1.1). */
interface IssuerHashInput {
  nameDer: Buffer;
  /** The subjectPublicKey BIT STRING's value, without tag, length and unused-bits octet. */
  keyBits: Buffer;
}

/** Answers DER OCSP requests with DER OCSP responses (see the module comment). */
export class OcspResponder {
  readonly #deps: OcspResponderDeps;
  #issuer: Promise<IssuerHashInput> | undefined;

  constructor(deps: OcspResponderDeps) {
    this.#deps = deps;
  }

  /**
   * The DER OCSPResponse (RFC 6960 §4.2.1) for the DER OCSPRequest `requestDer`: `successful` with a
   * BasicOCSPResponse signed by the issuing CA, one SingleResponse per certificate asked about, the
   * request's nonce echoed (RFC 8954); or `malformedRequest` without a body. Never throws for what
   * the client sent; a store or signing failure rejects (the route answers `internalError`).
   */
  async respond(requestDer: Uint8Array): Promise<Buffer> {
    let request: OCSPRequest;
    try {
      request = AsnConvert.parse(requestDer, OCSPRequest);
    } catch {
      return statusOnly(OCSPResponseStatus.malformedRequest);
    }
    const list = request.tbsRequest.requestList;
    if (list.length === 0 || list.length > MAX_OCSP_REQUESTS) {
      return statusOnly(OCSPResponseStatus.malformedRequest);
    }
    const issuer = await this.#issuerHashInput();
    const now = this.#deps.clock.now();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + OCSP_VALIDITY_MS);
    const responses: SingleResponse[] = [];
    for (const { reqCert } of list) {
      const certStatus = await this.#status(reqCert, issuer);
      responses.push(new SingleResponse({ certID: reqCert, certStatus, thisUpdate, nextUpdate }));
    }
    const nonce = echoedNonce(request.tbsRequest.requestExtensions);
    const tbs = new ResponseData({
      responderID: new ResponderID({
        byKey: new KeyHash(createHash('sha1').update(issuer.keyBits).digest()),
      }),
      producedAt: thisUpdate,
      responses,
      ...(nonce ? { responseExtensions: [nonce] } : {}),
    });
    const tbsDer = AsnConvert.serialize(tbs);
    const { algorithm, signature } = await this.#deps.issuer.signAsIssuing(tbsDer);
    const basic = new BasicOCSPResponse({ tbsResponseData: tbs, signatureAlgorithm: algorithm, signature });
    return Buffer.from(
      AsnConvert.serialize(
        new OCSPResponse({
          responseStatus: OCSPResponseStatus.successful,
          responseBytes: new ResponseBytes({
            responseType: id_pkix_ocsp_basic,
            response: new OctetString(AsnConvert.serialize(basic)),
          }),
        }),
      ),
    );
  }

  /** A response with only a status: `internalError` when answering failed (RFC 6960 §4.2.1). */
  static internalError(): Buffer {
    return statusOnly(OCSPResponseStatus.internalError);
  }

  /** good / revoked / unknown for one CertID: unknown when our issuing CA is not its issuer. */
  async #status(certId: CertID, issuer: IssuerHashInput): Promise<CertStatus> {
    const hash = HASHES[certId.hashAlgorithm.algorithm];
    const digest = (data: Buffer) => (hash ? createHash(hash).update(data).digest() : Buffer.alloc(0));
    const ours =
      hash !== undefined &&
      digest(issuer.nameDer).equals(Buffer.from(certId.issuerNameHash.buffer)) &&
      digest(issuer.keyBits).equals(Buffer.from(certId.issuerKeyHash.buffer));
    if (!ours) return new CertStatus({ unknown: null });
    const found = await this.#deps.statuses.getIssuedCertificateStatus(serialHex(certId.serialNumber));
    if (found === undefined) return new CertStatus({ unknown: null });
    if (found.revokedAt === undefined) return new CertStatus({ good: null });
    return new CertStatus({
      revoked: new RevokedInfo({
        revocationTime: new Date(Math.floor(found.revokedAt.getTime() / 1000) * 1000),
        ...(found.reason ? { revocationReason: new CRLReason(REASONS[found.reason]) } : {}),
      }),
    });
  }

  #issuerHashInput(): Promise<IssuerHashInput> {
    this.#issuer ??= this.#deps.issuer.chainDer().then(([issuingDer]) => {
      const tbs = AsnConvert.parse(issuingDer ?? Buffer.alloc(0), Certificate).tbsCertificate;
      return {
        nameDer: Buffer.from(AsnConvert.serialize(tbs.subject)),
        keyBits: Buffer.from(tbs.subjectPublicKeyInfo.subjectPublicKey),
      };
    });
    return this.#issuer;
  }
}

function statusOnly(status: OCSPResponseStatus): Buffer {
  return Buffer.from(AsnConvert.serialize(new OCSPResponse({ responseStatus: status })));
}

/** A DER INTEGER's content octets as stored serial numbers are written: uppercase hex, no leading zero octets. */
function serialHex(content: ArrayBuffer): string {
  let bytes = Buffer.from(content);
  while (bytes.length > 1 && bytes[0] === 0) bytes = bytes.subarray(1);
  return bytes.toString('hex').toUpperCase();
}

/**
 * The request's nonce extension (id-pkix-ocsp-nonce, RFC 8954 §2.1), to copy into the response,
 * when its value is an OCTET STRING of 1 to 32 octets; undefined otherwise.
 */
function echoedNonce(extensions: Extension[] | undefined): Extension | undefined {
  const nonce = extensions?.find((extension) => extension.extnID === id_pkix_ocsp_nonce);
  if (nonce === undefined) return undefined;
  try {
    const inner = AsnConvert.parse(nonce.extnValue.buffer, OctetString);
    return inner.byteLength >= 1 && inner.byteLength <= MAX_NONCE_BYTES ? nonce : undefined;
  } catch {
    return undefined;
  }
}
