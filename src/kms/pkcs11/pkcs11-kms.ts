import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { type Kms, KmsError, type UnwrapKeyRequest, type WrapKeyRequest, type WrappedKey } from '../types.js';

/** Where the KEK lives: a PKCS#11 module, a token in it, the user PIN and the key's label. */
export interface Pkcs11KmsOptions {
  /** Path of the PKCS#11 library (`/usr/lib/softhsm/libsofthsm2.so`). */
  modulePath: string;
  /** CKA_LABEL of the token (`CK_TOKEN_INFO.label`, trailing blanks ignored). */
  tokenLabel: string;
  /** User PIN; never logged or put into an error. */
  pin: string;
  /** CKA_LABEL of the AES-256 KEK new DEKs are wrapped with (`twoway-kek`). */
  keyLabel: string;
  /** Generate the KEK in the token when no key carries `keyLabel` (default true). */
  createIfMissing?: boolean;
}

const IV_BYTES = 12;
const TAG_BITS = 128;

/**
 * The RFC 7512 PKCS#11 URI of a key: `pkcs11:token=<label>;object=<label>`, each value
 * percent-encoded except the unreserved characters.
 */
export function pkcs11KeyUri(tokenLabel: string, keyLabel: string): string {
  return `pkcs11:token=${encodeURIComponent(tokenLabel)};object=${encodeURIComponent(keyLabel)}`;
}

/** The token and object labels of a `pkcs11:` URI, or undefined when it is not one. */
export function parsePkcs11KeyUri(uri: string): { tokenLabel: string; keyLabel: string } | undefined {
  if (!uri.startsWith('pkcs11:')) return undefined;
  const attributes = new Map(
    uri
      .slice('pkcs11:'.length)
      .split(';')
      .map((part) => {
        const eq = part.indexOf('=');
        return [part.slice(0, eq), decodeURIComponent(part.slice(eq + 1))] as const;
      }),
  );
  const tokenLabel = attributes.get('token');
  const keyLabel = attributes.get('object');
  return tokenLabel && keyLabel ? { tokenLabel, keyLabel } : undefined;
}

/**
 * A KMS whose KEKs are AES-256 secret keys inside a PKCS#11 token (an HSM; SoftHSM2 in tests). The
 * key never leaves the token: it is created with CKA_SENSITIVE true and CKA_EXTRACTABLE false, and
 * each DEK is encrypted and decrypted inside the token with CKM_AES_GCM (PKCS#11 v2.40 §2.10.4,
 * NIST SP 800-38D): `wrapped` = 12-byte nonce ‖ ciphertext ‖ 16-byte tag, the request's AAD bound,
 * exactly the layout of the local KMS.
 *
 * Keys are named by URI ({@link pkcs11KeyUri}); any key of the same token named by a row's `kekId`
 * unwraps, so a KEK version is a new key label (`twoway-kek-2`) and rows under the previous label
 * still open until `twoway kms rotate` has moved them.
 */
export class Pkcs11Kms implements Kms {
  readonly kekId: string;
  readonly #module: pkcs11js.PKCS11;
  readonly #session: Buffer;
  readonly #tokenLabel: string;
  readonly #modulePath: string;
  readonly #keys = new Map<string, Buffer>();
  #closed = false;

  private constructor(
    module: pkcs11js.PKCS11,
    modulePath: string,
    session: Buffer,
    tokenLabel: string,
    kekId: string,
  ) {
    this.#module = module;
    this.#modulePath = modulePath;
    this.#session = session;
    this.#tokenLabel = tokenLabel;
    this.kekId = kekId;
  }

  /**
   * Loads the module, opens a read-write session on the token labelled `tokenLabel`, logs in with
   * the PIN and finds (or, when `createIfMissing`, generates) the KEK labelled `keyLabel`.
   * @throws KmsError `bad_key` when the module does not load, the token is absent, the PIN is
   *   refused, or the key is missing and may not be created (the message never holds the PIN).
   */
  static open(options: Pkcs11KmsOptions): Pkcs11Kms {
    const module = acquireModule(options.modulePath);
    try {
      const slot = module
        .C_GetSlotList(true)
        .find((s) => module.C_GetTokenInfo(s).label.trimEnd() === options.tokenLabel);
      if (slot === undefined)
        throw new KmsError('bad_key', `no PKCS#11 token is labelled ${options.tokenLabel}`);
      const session = module.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      try {
        module.C_Login(session, pkcs11js.CKU_USER, options.pin);
      } catch (err) {
        throw new KmsError(
          'bad_key',
          `the PKCS#11 token ${options.tokenLabel} refused the PIN: ${reasonOf(err)}`,
        );
      }
      const kms = new Pkcs11Kms(
        module,
        options.modulePath,
        session,
        options.tokenLabel,
        pkcs11KeyUri(options.tokenLabel, options.keyLabel),
      );
      const key =
        kms.#find(options.keyLabel) ??
        (options.createIfMissing === false ? undefined : kms.#generate(options.keyLabel));
      if (key === undefined)
        throw new KmsError('bad_key', `no key labelled ${options.keyLabel} in the token`);
      kms.#keys.set(options.keyLabel, key);
      return kms;
    } catch (err) {
      releaseModule(options.modulePath);
      if (err instanceof KmsError) throw err;
      throw new KmsError('bad_key', `the PKCS#11 token cannot be used: ${reasonOf(err)}`);
    }
  }

  async wrapKey({ plaintext, aad }: WrapKeyRequest): Promise<WrappedKey> {
    const key = this.#keyOf(this.kekId);
    const iv = randomBytes(IV_BYTES);
    this.#module.C_EncryptInit(this.#session, gcm(iv, aad), key);
    const body = this.#module.C_Encrypt(this.#session, plaintext, Buffer.alloc(plaintext.length + 16));
    return { kekId: this.kekId, wrapped: Buffer.concat([iv, body]) };
  }

  async unwrapKey({ kekId, wrapped, aad }: UnwrapKeyRequest): Promise<Buffer> {
    const key = this.#keyOf(kekId);
    if (wrapped.length < IV_BYTES + 16) throw new KmsError('unwrap_failed', 'wrapped key too short');
    try {
      this.#module.C_DecryptInit(this.#session, gcm(wrapped.subarray(0, IV_BYTES), aad), key);
      const body = wrapped.subarray(IV_BYTES);
      return Buffer.from(this.#module.C_Decrypt(this.#session, body, Buffer.alloc(body.length)));
    } catch {
      throw new KmsError('unwrap_failed', 'the KEK or the associated data does not match');
    }
  }

  /** True when the token is still logged in and answers (for /readyz). */
  ping(): boolean {
    return !this.#closed && this.#module.C_GetSessionInfo(this.#session) !== undefined;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#module.C_Logout(this.#session);
      this.#module.C_CloseSession(this.#session);
    } finally {
      releaseModule(this.#modulePath);
    }
  }

  /** The handle of the key `kekId` names in this token. @throws KmsError `unknown_kek` */
  #keyOf(kekId: string): Buffer {
    const parsed = parsePkcs11KeyUri(kekId);
    if (this.#closed || parsed === undefined || parsed.tokenLabel !== this.#tokenLabel)
      throw new KmsError('unknown_kek', `unknown KEK ${kekId}`);
    let key = this.#keys.get(parsed.keyLabel);
    if (key === undefined) {
      key = this.#find(parsed.keyLabel);
      if (key === undefined) throw new KmsError('unknown_kek', `unknown KEK ${kekId}`);
      this.#keys.set(parsed.keyLabel, key);
    }
    return key;
  }

  #find(label: string): Buffer | undefined {
    this.#module.C_FindObjectsInit(this.#session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    try {
      return this.#module.C_FindObjects(this.#session) ?? undefined;
    } finally {
      this.#module.C_FindObjectsFinal(this.#session);
    }
  }

  /** A persistent AES-256 key that never leaves the token and only encrypts and decrypts. */
  #generate(label: string): Buffer {
    return this.#module.C_GenerateKey(this.#session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
    ]);
  }
}

/**
 * A module is loaded and initialised once per process (C_Initialize twice answers
 * CKR_CRYPTOKI_ALREADY_INITIALIZED), shared by every KMS opened on it, and finalised when the last
 * one closes.
 */
const modules = new Map<string, { module: pkcs11js.PKCS11; users: number }>();

/** @throws KmsError `bad_key` when the module does not load or initialise */
function acquireModule(path: string): pkcs11js.PKCS11 {
  const loaded = modules.get(path);
  if (loaded !== undefined) {
    loaded.users += 1;
    return loaded.module;
  }
  const module = new pkcs11js.PKCS11();
  try {
    module.load(path);
    module.C_Initialize();
  } catch (err) {
    throw new KmsError('bad_key', `the PKCS#11 module ${path} does not load: ${reasonOf(err)}`);
  }
  modules.set(path, { module, users: 1 });
  return module;
}

function releaseModule(path: string): void {
  const loaded = modules.get(path);
  if (loaded === undefined || --loaded.users > 0) return;
  modules.delete(path);
  loaded.module.C_Finalize();
  loaded.module.close();
}

function gcm(iv: Buffer, aad: Buffer): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: {
      type: pkcs11js.CK_PARAMS_AES_GCM,
      iv,
      ivBits: IV_BYTES * 8,
      aad,
      tagBits: TAG_BITS,
    } as pkcs11js.GcmParams,
  };
}

/** The PKCS#11 return value name (CKR_PIN_INCORRECT) of a binding error, without anything else. */
function reasonOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return /CKR_[A-Z_]+/.exec(message)?.[0] ?? 'module error';
}
