import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * Paths pino redacts: a second net behind the rule that key material, passwords and tokens are
 * never passed to a log call in the first place.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.password',
  '*.passphrase',
  '*.privateKey',
  '*.privateKeyPem',
  '*.pkcs12',
  '*.apiKey',
  '*.token',
  '*.key',
  '*.masterKey',
  '*.operatorToken',
  'password',
  'privateKey',
  'apiKey',
  'masterKey',
  'operatorToken',
];

/** The root logger: JSON lines, redaction on, `level` from config. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'twoway' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
