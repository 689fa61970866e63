/**
 * The platform CA: a root and an issuing intermediate, created on first start and kept in the
 * database (one CA per deployment, shared by every replica), each private key sealed with envelope
 * encryption through the Kms. The issuing CA signs tenants' client certificates (from CSRs), the
 * edge listener's default server certificate, the CRL (RFC 5280 §5) of revoked issued
 * certificates, and the OCSP responses of ocsp.ts (RFC 6960).
 *
 * Only the issuing key is opened at start, into a non-extractable CryptoKey; the root key stays
 * sealed (it is only needed to issue a new intermediate).
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import type { Logger } from 'pino';
import { DAY_MS, describeKey, fingerprintSha256, toPem } from '../certificates/index.js';
import { AppError } from '../errors/app-error.js';
import { open, seal } from '../kms/envelope.js';
import type { Kms } from '../kms/types.js';
import type { Clock } from '../shared/clock.js';
import type {
  CrlMaker,
  PlatformCaCertificate,
  PlatformCaStore,
  RevocationReason,
  RevokedSerial,
  StoredCrl,
} from '../store/index.js';
import {
  type CaKeyAlgorithm,
  type CaKeyParams,
  caKeyAlgorithmOf,
  caKeyParams,
  evenHex,
  randomSerialHex,
  signAsn1,
  subtle,
  x509,
} from './crypto.js';
import type { VerifiedCsr } from './csr.js';
import { tenantUri } from './naming.js';

/** Root: 20 years; issuing intermediate: 10 years. */
const ROOT_DAYS = 7305;
const ISSUING_DAYS = 3652;
/** Certificates are valid from a few minutes back, for clients whose clocks run a little late. */
const BACKDATE_MS = 5 * 60_000;
/** A CRL is valid for 7 days (nextUpdate) and remade once it is a day old, or on any revocation. */
const CRL_VALIDITY_MS = 7 * DAY_MS;
const CRL_REFRESH_AFTER_MS = DAY_MS;

/** RFC 5280 §5.3.1 reason codes by name. */
const REASONS: Record<RevocationReason, x509.X509CrlReason> = {
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
};

/**
 * Associated data binding a CA key to its role and certificate: a sealed key copied to the other
 * role, or kept across a new CA, does not open.
 */
export function caKeyAad(role: 'root' | 'issuing', certificateFingerprintSha256: string): Buffer {
  return Buffer.from(`twoway/v1/platform-ca-key/${role}/${certificateFingerprintSha256}`, 'utf8');
}

export interface PlatformCaDeps {
  store: PlatformCaStore;
  kms: Kms;
  clock: Clock;
  /** For a new CA only (`TWOWAY_CA_KEY_ALGORITHM`); a stored CA keeps its own algorithm. */
  keyAlgorithm: CaKeyAlgorithm;
  /**
   * Where relying parties fetch the CRL (`<TWOWAY_PUBLIC_URL>/v1/ca/crl`): named in every
   * certificate issued from now on as its CRL distribution point (RFC 5280 §4.2.1.13). None without.
   */
  crlUrl?: string;
  /**
   * The OCSP responder (`<TWOWAY_PUBLIC_URL>/v1/ca/ocsp`): named in every certificate issued from
   * now on in its Authority Information Access (RFC 5280 §4.2.2.1, id-ad-ocsp). None without.
   */
  ocspUrl?: string;
  logger?: Logger;
  /**
   * Common names of a new CA, before its random tag (default `Twoway Platform Root CA` and
   * `Twoway Platform Issuing CA`); the platform outbound CA has its own.
   */
  names?: { root: string; issuing: string };
}

/** An opened platform CA. */
interface OpenCa {
  root: X509Certificate;
  issuing: X509Certificate;
  /** The issuing certificate as @peculiar/x509 reads it (issuer name, key identifier). */
  issuingX509: x509.X509Certificate;
  issuingKey: CryptoKey;
  params: CaKeyParams;
  /** Key identifier of the issuing key, hex (RFC 5280 §4.2.1.1). */
  issuingKeyId: string;
}

/** A certificate issued by the platform CA. */
export interface IssuedCertificate {
  certificate: X509Certificate;
  certificatePem: string;
}

/**
 * The deployment's platform CA (see the module comment): opened once per process, created on the
 * very first start by {@link PlatformCa.ensure}.
 */
export class PlatformCa {
  readonly #deps: PlatformCaDeps;
  #opened: Promise<OpenCa> | undefined;
  #crl: StoredCrl | undefined;

  constructor(deps: PlatformCaDeps) {
    this.#deps = deps;
  }

  /**
   * Opens the platform CA, creating it on the very first start (root + issuing, keys sealed by the
   * Kms), and makes sure a CRL exists. Idempotent; concurrent starts of several replicas agree on one
   * CA because the store inserts it only when none exists.
   * @throws KmsError when the stored keys do not open with this KEK.
   */
  async ensure(): Promise<void> {
    await this.#open();
    if (!(await this.#deps.store.getCrl())) await this.#deps.store.refreshCrl(this.crlMaker());
  }

  /** The issuing CA then the root, PEM: what clients need to build the path to the root. */
  async chainPem(): Promise<string> {
    return (await this.chainDer()).map((der) => toPem('CERTIFICATE', der)).join('');
  }

  /** The issuing CA then the root, DER. */
  async chainDer(): Promise<Buffer[]> {
    const ca = await this.#open();
    return [ca.issuing.raw, ca.root.raw];
  }

  /**
   * Issues a client certificate for a verified CSR (RFC 5280 profile): the CSR's subject (or
   * `CN=<fallbackCommonName>` when it is empty) and public key; a random 128-bit serial; valid from
   * five minutes ago for `days` days, never past the issuing CA; basicConstraints cA=false,
   * keyUsage digitalSignature (critical), extendedKeyUsage clientAuth (RFC 5280 §4.2.1.12), and a
   * subjectAltName with the URI `urn:twoway:tenant:<tenantId>`, which names the tenant the
   * certificate belongs to, and the CRL distribution point when `crlUrl` is set. Requested
   * extensions in the CSR are ignored.
   */
  async issueClientCertificate(request: {
    csr: VerifiedCsr;
    tenantId: string;
    days: number;
    fallbackCommonName: string;
  }): Promise<IssuedCertificate> {
    const ca = await this.#open();
    const subject =
      request.csr.subject === ''
        ? new x509.Name([{ CN: [request.fallbackCommonName] }])
        : new x509.Name(request.csr.subjectDer);
    const publicKey = new x509.PublicKey(request.csr.spkiDer as BufferSource);
    return this.#issue(ca, {
      subject,
      publicKey,
      days: request.days,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension(
          [{ type: 'url', value: tenantUri(request.tenantId) }],
          false,
        ),
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
      ],
    });
  }

  /**
   * Issues a client certificate (clientAuth) for `publicKey` named `commonName`, with a DNS
   * subjectAltName of the same name when it is a host name (`mtls-prod.example.com`, as platforms
   * publish theirs): the platform outbound CA's certificates for the platform's own identities.
   */
  async issuePlatformClientCertificate(request: {
    commonName: string;
    publicKey: CryptoKey;
    days: number;
  }): Promise<IssuedCertificate & { chainPem: string }> {
    const ca = await this.#open();
    const hostName = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i.test(
      request.commonName,
    );
    const issued = await this.#issue(ca, {
      subject: new x509.Name([{ CN: [request.commonName] }]),
      publicKey: request.publicKey,
      days: request.days,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        ...(hostName
          ? [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: request.commonName }], false)]
          : []),
        await x509.SubjectKeyIdentifierExtension.create(request.publicKey),
      ],
    });
    return { ...issued, chainPem: toPem('CERTIFICATE', ca.issuing.raw) };
  }

  /**
   * Issues a TLS server certificate for `hostNames` (DNS names and IP addresses) with a fresh
   * ECDSA P-256 key that never leaves memory: the edge listener's default certificate. It names the
   * CRL distribution point too when `crlUrl` is set.
   * @returns the certificate, its chain (issuing CA) and the key, PEM.
   */
  async issueServerCertificate(
    hostNames: string[],
    days: number,
  ): Promise<{ certificatePem: string; chainPem: string; keyPem: string; notAfter: Date }> {
    const ca = await this.#open();
    const keys = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const names = hostNames.map((value) => ({
      type: /^[\d.]+$|:/.test(value) ? ('ip' as const) : ('dns' as const),
      value,
    }));
    const issued = await this.#issue(ca, {
      subject: new x509.Name([{ CN: [hostNames[0] ?? 'twoway-edge'] }]),
      publicKey: keys.publicKey,
      days,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(names, false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', keys.privateKey));
    try {
      return {
        certificatePem: issued.certificatePem,
        chainPem: toPem('CERTIFICATE', ca.issuing.raw),
        keyPem: toPem('PRIVATE KEY', pkcs8),
        notAfter: new Date(issued.certificate.validTo),
      };
    } finally {
      pkcs8.fill(0);
    }
  }

  /**
   * True when the issuing CA's name and key issued `certificate`: the edge's test for "chains to the
   * platform CA" (RFC 5280 §6.1.3 (a)(1), (a)(4)). The name check comes first, so a foreign
   * certificate costs no signature verification.
   */
  async issued(certificate: X509Certificate): Promise<boolean> {
    const ca = await this.#open();
    try {
      return certificate.checkIssued(ca.issuing) && certificate.verify(ca.issuing.publicKey);
    } catch {
      return false;
    }
  }

  /** Makes CRLs signed by the issuing CA, for the store to call inside a revocation's transaction. */
  crlMaker(): CrlMaker {
    return async (revoked, crlNumber) => this.#makeCrl(await this.#open(), revoked, crlNumber);
  }

  /**
   * The current CRL, DER (RFC 5280 §5): from memory, else from the store; remade when it is a day
   * old (it is valid for seven) or missing.
   */
  async crlDer(): Promise<Buffer> {
    const now = this.#deps.clock.now().getTime();
    const fresh = (crl: StoredCrl | undefined): crl is StoredCrl =>
      crl !== undefined &&
      now - crl.thisUpdate.getTime() < CRL_REFRESH_AFTER_MS &&
      now >= crl.thisUpdate.getTime();
    if (!fresh(this.#crl)) {
      let crl = await this.#deps.store.getCrl();
      if (!fresh(crl)) crl = await this.#deps.store.refreshCrl(this.crlMaker());
      this.#crl = crl;
    }
    return this.#crl.der;
  }

  /**
   * Signs `data` with the issuing CA's key (an OCSP response's tbsResponseData, RFC 6960 §4.2.1)
   * and returns the signature with its AlgorithmIdentifier, as {@link signAsn1} encodes them.
   */
  async signAsIssuing(
    data: ArrayBuffer,
  ): Promise<{ algorithm: AlgorithmIdentifier; signature: ArrayBuffer }> {
    const ca = await this.#open();
    return signAsn1(ca.issuingKey, ca.params.signing, data);
  }

  /** Drops the cached CRL (a revocation here or in another process made a new one). */
  forgetCachedCrl(): void {
    this.#crl = undefined;
  }

  #open(): Promise<OpenCa> {
    this.#opened ??= this.#load().catch((err: unknown) => {
      this.#opened = undefined;
      throw err;
    });
    return this.#opened;
  }

  async #load(): Promise<OpenCa> {
    const { store, kms, logger } = this.#deps;
    let stored = await store.getPlatformCa();
    if (!stored) {
      const made = await this.#create();
      if (await store.createPlatformCa(made.root, made.issuing)) {
        logger?.info(
          {
            rootFingerprintSha256: fingerprintSha256(new X509Certificate(made.root.certificatePem)),
            issuingFingerprintSha256: fingerprintSha256(new X509Certificate(made.issuing.certificatePem)),
            keyAlgorithm: this.#deps.keyAlgorithm,
          },
          'platform CA created',
        );
      }
      stored = await store.getPlatformCa();
      if (!stored) throw new AppError('internal_error', 'The platform CA could not be stored.');
    }
    const root = new X509Certificate(stored.root.certificatePem);
    const issuing = new X509Certificate(stored.issuing.certificatePem);
    const params = caKeyParams(caKeyAlgorithmOf(describeKey(issuing.publicKey)));
    const pkcs8 = await open(kms, stored.issuing.secret, caKeyAad('issuing', fingerprintSha256(issuing)));
    let issuingKey: CryptoKey;
    try {
      issuingKey = await subtle.importKey('pkcs8', pkcs8 as BufferSource, params.import, false, ['sign']);
    } finally {
      pkcs8.fill(0);
    }
    const issuingX509 = new x509.X509Certificate(issuing.raw);
    // Every CA Twoway creates has one; the AKI of what it issues must repeat it (RFC 5280 §4.2.1.1).
    const ski = issuingX509.getExtension(x509.SubjectKeyIdentifierExtension);
    if (!ski) throw new AppError('internal_error', 'The platform issuing CA has no subjectKeyIdentifier.');
    return { root, issuing, issuingX509, issuingKey, params, issuingKeyId: ski.keyId };
  }

  /** A new root and issuing CA with sealed keys; names carry a random tag so deployments differ. */
  async #create(): Promise<{ root: PlatformCaCertificate; issuing: PlatformCaCertificate }> {
    const params = caKeyParams(this.#deps.keyAlgorithm);
    const now = this.#deps.clock.now();
    const tag = randomSerialHex().slice(0, 8);
    const names = this.#deps.names ?? {
      root: 'Twoway Platform Root CA',
      issuing: 'Twoway Platform Issuing CA',
    };
    const generate = async () =>
      (await subtle.generateKey(params.generate, true, ['sign', 'verify'])) as CryptoKeyPair;
    const rootKeys = await generate();
    const issuingKeys = await generate();
    const caUsage = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;
    const rootCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerialHex(),
      name: new x509.Name([{ O: ['Twoway'] }, { CN: [`${names.root} ${tag}`] }]),
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + ROOT_DAYS * DAY_MS),
      keys: rootKeys,
      signingAlgorithm: params.signing,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(caUsage, true),
        await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
      ],
    });
    const issuingCert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: new x509.Name([{ O: ['Twoway'] }, { CN: [`${names.issuing} ${tag}`] }]),
      issuer: rootCert.subjectName,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + ISSUING_DAYS * DAY_MS),
      publicKey: issuingKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: params.signing,
      extensions: [
        // pathLenConstraint 0: the issuing CA signs end-entity certificates only (RFC 5280 §4.2.1.9).
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(caUsage, true),
        await x509.SubjectKeyIdentifierExtension.create(issuingKeys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
      ],
    });
    const sealKey = async (role: 'root' | 'issuing', cert: x509.X509Certificate, key: CryptoKey) => {
      const der = Buffer.from(cert.rawData);
      const pkcs8 = Buffer.from(await subtle.exportKey('pkcs8', key));
      try {
        const secret = await seal(
          this.#deps.kms,
          pkcs8,
          caKeyAad(role, createHash('sha256').update(der).digest('hex')),
        );
        return { role, certificatePem: toPem('CERTIFICATE', der), secret, createdAt: now };
      } finally {
        pkcs8.fill(0);
      }
    };
    return {
      root: await sealKey('root', rootCert, rootKeys.privateKey),
      issuing: await sealKey('issuing', issuingCert, issuingKeys.privateKey),
    };
  }

  async #issue(
    ca: OpenCa,
    spec: {
      subject: x509.Name;
      publicKey: x509.PublicKey | CryptoKey;
      days: number;
      extensions: x509.Extension[];
    },
  ): Promise<IssuedCertificate> {
    const now = this.#deps.clock.now().getTime();
    const caNotAfter = new Date(ca.issuing.validTo).getTime();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      subject: spec.subject,
      issuer: ca.issuingX509.subjectName,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(Math.min(now - BACKDATE_MS + spec.days * DAY_MS, caNotAfter)),
      publicKey: spec.publicKey,
      signingKey: ca.issuingKey,
      signingAlgorithm: ca.params.signing,
      extensions: [
        ...spec.extensions,
        new x509.AuthorityKeyIdentifierExtension(ca.issuingKeyId),
        ...(this.#deps.crlUrl !== undefined
          ? [new x509.CRLDistributionPointsExtension([this.#deps.crlUrl])]
          : []),
        ...(this.#deps.ocspUrl !== undefined
          ? [new x509.AuthorityInfoAccessExtension({ ocsp: [this.#deps.ocspUrl] })]
          : []),
      ],
    });
    const der = Buffer.from(cert.rawData);
    return { certificate: new X509Certificate(der), certificatePem: toPem('CERTIFICATE', der) };
  }

  /**
   * A CRL v2 (RFC 5280 §5.1) signed by the issuing CA: every revoked serial with its revocation date
   * and reason (`unspecified` left out, §5.3.1), thisUpdate now, nextUpdate in seven days, and the
   * authorityKeyIdentifier (§5.2.1) and cRLNumber (§5.2.3) extensions.
   */
  async #makeCrl(
    ca: OpenCa,
    revoked: RevokedSerial[],
    crlNumber: number,
  ): Promise<Omit<StoredCrl, 'crlNumber'>> {
    const thisUpdate = new Date(Math.floor(this.#deps.clock.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + CRL_VALIDITY_MS);
    const crl = await x509.X509CrlGenerator.create({
      issuer: ca.issuingX509.subjectName,
      thisUpdate,
      nextUpdate,
      signingAlgorithm: ca.params.signing,
      signingKey: ca.issuingKey,
      extensions: [
        new x509.AuthorityKeyIdentifierExtension(ca.issuingKeyId),
        new x509.Extension('2.5.29.20', false, derInteger(crlNumber) as BufferSource),
      ],
      entries: revoked.map((entry) => ({
        serialNumber: evenHex(entry.serialNumber),
        revocationDate: entry.revokedAt,
        ...(entry.reason && entry.reason !== 'unspecified' ? { reason: REASONS[entry.reason] } : {}),
      })),
    });
    return { der: Buffer.from(crl.rawData), thisUpdate, nextUpdate };
  }
}

/** DER INTEGER of a non-negative safe integer (the CRLNumber extension value). */
function derInteger(value: number): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
}
