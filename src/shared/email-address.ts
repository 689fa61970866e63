/**
 * A plain e-mail address as Twoway accepts one (notification settings, members): `local@domain`,
 * at most 254 characters (RFC 5321 §4.5.3.1.3), a local part without spaces, quotes, angle
 * brackets or the other specials that would need quoting in a header (RFC 5322 §3.4.1), and a
 * domain of LDH labels. Stricter than the RFCs on purpose: these addresses go into SMTP envelopes.
 */
const EMAIL =
  /^[^\s@<>(),;:"[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** True when `value` is an address as described above. */
export function isEmailAddress(value: string): boolean {
  return value.length <= 254 && EMAIL.test(value);
}
