import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/config.js';

describe('edge and client certificate settings', () => {
  test('defaults', () => {
    expect(loadConfig({})).toMatchObject({
      edgePort: 8443,
      edgeHostNames: 'localhost,127.0.0.1,::1',
      caKeyAlgorithm: 'ecdsa-p256',
      clientCertKeyTypes: 'rsa-2048,rsa-3072,rsa-4096,ec-p256,ec-p384,ed25519',
      clientCertMaxValidityDays: 398,
      clientCertIssueValidityDays: 365,
    });
  });

  test('a certificate file needs its key, issued validity cannot exceed the maximum, key types are checked', () => {
    let error: unknown;
    try {
      loadConfig({
        TWOWAY_EDGE_CERT_FILE: '/tmp/edge.crt',
        TWOWAY_CLIENT_CERT_MAX_VALIDITY_DAYS: '90',
        TWOWAY_CLIENT_CERT_KEY_TYPES: 'rsa-1024',
        TWOWAY_CA_KEY_ALGORITHM: 'dsa',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/TWOWAY_EDGE_CERT_FILE and TWOWAY_EDGE_KEY_FILE/);
    expect(problems).toMatch(/TWOWAY_CLIENT_CERT_ISSUE_VALIDITY_DAYS/);
    expect(problems).toMatch(/TWOWAY_CLIENT_CERT_KEY_TYPES/);
    expect(problems).toMatch(/TWOWAY_CA_KEY_ALGORITHM/);
  });
});
