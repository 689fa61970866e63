import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { describe, expect, test } from 'vitest';
import {
  checkClientCertificate,
  checkKey,
  checkNoTenantName,
  clientCertificatePolicy,
  keyTypeName,
  namesTenant,
} from '../../../src/client-certificates/policy.js';
import { makePki } from '../../fixtures/pki.js';
import { errorCodeOf as codeOf } from '../certificates/helpers.js';

const defaults = clientCertificatePolicy({
  clientCertKeyTypes: 'rsa-2048,rsa-3072,rsa-4096,ec-p256,ec-p384,ed25519',
  clientCertMaxValidityDays: 398,
  clientCertIssueValidityDays: 365,
});

describe('client certificate key policy', () => {
  test('names keys as the configuration does', () => {
    expect(keyTypeName({ keyType: 'RSA', keySize: 3072 })).toBe('rsa-3072');
    expect(keyTypeName({ keyType: 'EC', keySize: 384, curve: 'P-384' })).toBe('ec-p384');
    expect(keyTypeName({ keyType: 'Ed25519' })).toBe('ed25519');
  });

  test('defaults: RSA 2048, EC P-256/P-384 and Ed25519 pass; RSA 1024 is weak; P-521 and RSA 2560 are not allowed', () => {
    const key = (type: 'rsa' | 'ec' | 'ed25519', option?: number | string) =>
      generateKeyPairSync(
        type as 'rsa',
        (type === 'rsa' ? { modulusLength: option } : type === 'ec' ? { namedCurve: option } : {}) as {
          modulusLength: number;
        },
      ).publicKey;
    expect(codeOf(() => checkKey(key('rsa', 2048), defaults))).toBe('ok');
    expect(codeOf(() => checkKey(key('ec', 'P-256'), defaults))).toBe('ok');
    expect(codeOf(() => checkKey(key('ec', 'P-384'), defaults))).toBe('ok');
    expect(codeOf(() => checkKey(key('ed25519'), defaults))).toBe('ok');
    expect(codeOf(() => checkKey(key('rsa', 1024), defaults))).toBe('weak_key');
    expect(codeOf(() => checkKey(key('rsa', 2560), defaults))).toBe('key_type_not_allowed');
    expect(codeOf(() => checkKey(key('ec', 'P-521'), defaults))).toBe('key_type_not_allowed');
  });

  test('a deployment can narrow the list', () => {
    const edOnly = clientCertificatePolicy({
      clientCertKeyTypes: 'ed25519',
      clientCertMaxValidityDays: 90,
      clientCertIssueValidityDays: 30,
    });
    expect(edOnly).toMatchObject({ maxValidityDays: 90, issueValidityDays: 30 });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    expect(codeOf(() => checkKey(rsa, edOnly))).toBe('key_type_not_allowed');
  });
});

describe('client certificate usage', () => {
  test('a keyUsage without digitalSignature is refused; with it, or without keyUsage, passes', async () => {
    const pki = await makePki('Policy Usage');
    const check = async (keyUsage: number) => {
      const leaf = await pki.leaf({ cn: `usage ${keyUsage}`, keyUsage });
      return codeOf(() => checkClientCertificate(new X509Certificate(leaf.certPem), defaults, new Date()));
    };
    expect(await check(KeyUsageFlags.keyEncipherment)).toBe('digital_signature_not_allowed');
    expect(await check(KeyUsageFlags.nonRepudiation)).toBe('digital_signature_not_allowed');
    expect(await check(KeyUsageFlags.digitalSignature)).toBe('ok');
    const serverOnly = await pki.leaf({ cn: 'server only', eku: 'serverAuth' });
    expect(
      codeOf(() => checkClientCertificate(new X509Certificate(serverOnly.certPem), defaults, new Date())),
    ).toBe('client_auth_not_allowed');
  });
});

describe('reserved tenant names in subjectAltNames', () => {
  test('the tenant URN is refused however it is spelt: case, percent-encoding (once or more), full-width, spaces', () => {
    for (const name of [
      'URI:urn:twoway:tenant:acme',
      'URI:URN:TWOWAY:Tenant:acme',
      'URI:urn:twoway:tenant%3Aacme',
      'URI:urn%3atwoway%3Atenant%3Aacme',
      'URI:%75rn:twoway:tenant:acme',
      'URI:urn:twoway:tenant%253Aacme',
      'URI:urn:twoway:tenant%25253Aacme',
      'URI:%20urn:twoway:tenant:acme',
      'URI:ｕｒｎ:twoway:tenant:acme',
      'DNS:urn:twoway:tenant:acme',
    ]) {
      expect(namesTenant(name), name).toBe(true);
      expect(
        codeOf(() => checkNoTenantName(['DNS:ok.example', name])),
        name,
      ).toBe('reserved_tenant_name');
    }
  });

  test('other names pass, percent signs included', () => {
    for (const name of [
      'URI:urn:twoway:tenants',
      'URI:urn:example:tenant:acme',
      'URI:https://x.example/urn:twoway:tenant:acme',
      'URI:https://x.example/100%',
      'URI:spiffe://acme/%ZZ',
      'DNS:acme.example',
    ]) {
      expect(namesTenant(name), name).toBe(false);
    }
    expect(codeOf(() => checkNoTenantName(['URI:https://x.example/a%3Ab']))).toBe('ok');
  });
});
