/**
 * Where Twoway may connect on a caller's behalf: forwards, the certificate tester and expiry webhooks
 * all take their URL from a tenant, so without these checks the gateway would open connections into
 * its own network (SSRF): the cloud metadata service, loopback admin ports, private ranges. Ranges follow the IANA IPv4 and IPv6 Special-Purpose Address Registries
 * (RFC 6890 and its updates). Matching uses node:net BlockList; embedded IPv4 addresses in IPv6 forms
 * (mapped, compatible, NAT64, 6to4, Teredo) are unpacked and checked against the IPv4 rules, because
 * a dual-stack host or a translator on the path delivers them to the IPv4 address inside.
 */
import dns from 'node:dns';
import net, { BlockList } from 'node:net';
import { AppError } from '../errors/app-error.js';

/** IPv4 ranges never reached unless forwarding to private addresses is allowed. */
const blockedV4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], // "this network", unspecified (RFC 791, RFC 1122)
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // shared address space, CGNAT (RFC 6598)
  ['127.0.0.0', 8], // loopback (RFC 1122)
  ['168.63.129.16', 32], // Azure's host endpoint (WireServer, metadata and health probes)
  ['169.254.0.0', 16], // link-local, incl. 169.254.169.254 cloud metadata (RFC 3927)
  ['172.16.0.0', 12], // private (RFC 1918)
  ['192.0.0.0', 24], // IETF protocol assignments (RFC 6890)
  ['192.0.2.0', 24], // TEST-NET-1 documentation (RFC 5737)
  ['192.88.99.0', 24], // deprecated 6to4 relay anycast (RFC 7526)
  ['192.168.0.0', 16], // private (RFC 1918)
  ['198.18.0.0', 15], // benchmarking (RFC 2544)
  ['198.51.100.0', 24], // TEST-NET-2 documentation (RFC 5737)
  ['203.0.113.0', 24], // TEST-NET-3 documentation (RFC 5737)
  ['224.0.0.0', 4], // multicast (RFC 5771)
  ['240.0.0.0', 4], // reserved, incl. limited broadcast 255.255.255.255 (RFC 1112, RFC 919)
];

/** IPv6 ranges blocked whole (their low bits are not an IPv4 address we could judge instead). */
const blockedV6: ReadonlyArray<readonly [string, number]> = [
  ['::', 128], // unspecified (RFC 4291)
  ['::1', 128], // loopback (RFC 4291)
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215)
  ['100::', 64], // discard-only (RFC 6666)
  ['2001:2::', 48], // benchmarking (RFC 5180)
  ['2001:10::', 28], // deprecated ORCHID (RFC 4843)
  ['2001:20::', 28], // ORCHIDv2 (RFC 7343)
  ['2001:db8::', 32], // documentation (RFC 3849)
  ['3fff::', 20], // documentation (RFC 9637)
  ['5f00::', 16], // SRv6 SIDs, not globally reachable (RFC 9602)
  ['fc00::', 7], // unique local (RFC 4193)
  ['fe80::', 10], // link-local (RFC 4291)
  ['fec0::', 10], // deprecated site-local (RFC 3879)
  ['ff00::', 8], // multicast (RFC 4291)
];

const blocked = new BlockList();
for (const [network, prefix] of blockedV4) blocked.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of blockedV6) blocked.addSubnet(network, prefix, 'ipv6');

function subnetList(network: string, prefix: number): BlockList {
  const list = new BlockList();
  list.addSubnet(network, prefix, 'ipv6');
  return list;
}

// IPv6 forms that carry an IPv4 address in their last 32 bits. BlockList already treats
// ::ffff:a.b.c.d like a.b.c.d (measured on Node 20), the others it does not.
const lastBitsV4 = [
  subnetList('::ffff:0:0', 96), // IPv4-mapped (RFC 4291 §2.5.5.2)
  subnetList('::', 96), // deprecated IPv4-compatible (RFC 4291 §2.5.5.1)
  subnetList('64:ff9b::', 96), // NAT64 well-known prefix (RFC 6052)
  subnetList('::ffff:0:0:0', 96), // SIIT IPv4-translated (RFC 2765)
];
const sixToFour = subnetList('2002::', 16); // 6to4: IPv4 in bits 16..47 (RFC 3056)
const teredo = subnetList('2001::', 32); // Teredo: server in bits 32..63, client inverted in 96..127 (RFC 4380)

/** Expands a valid IPv6 address (no zone) into its eight 16-bit groups; null when malformed. */
function groupsOf(address: string): number[] | null {
  let text = address;
  let tail: number[] | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // A trailing dotted quad (::ffff:1.2.3.4) stands for the last two groups.
    const octets = text
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    tail = [((octets[0] ?? 0) << 8) | (octets[1] ?? 0), ((octets[2] ?? 0) << 8) | (octets[3] ?? 0)];
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const rest = halves[1] ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - rest.length : 0;
  if (fill < 0) return null;
  const groups = [...head, ...new Array<string>(fill).fill('0'), ...rest].map((g) => Number.parseInt(g, 16));
  if (groups.length !== 8 || groups.some(Number.isNaN)) return null;
  if (tail !== null) groups.splice(6, 2, ...tail);
  return groups;
}

function v4Of(high: number, low: number): string {
  return `${high >>> 8}.${high & 0xff}.${low >>> 8}.${low & 0xff}`;
}

/**
 * True for addresses a forward must never reach unless `forwardAllowPrivate` is set: loopback,
 * unspecified, private, link-local (incl. the 169.254.169.254 metadata address), CGNAT, benchmarking,
 * multicast, reserved/broadcast, documentation ranges, and IPv6 forms (mapped, compatible, NAT64,
 * SIIT, 6to4, Teredo) of a blocked IPv4 address. `address` is an IP literal, IPv6 with or without
 * brackets or zone (`fe80::1%eth0`). Anything that is not an IP address is blocked (fail closed).
 */
export function isBlockedAddress(address: string): boolean {
  let text = address;
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  const family = net.isIP(text);
  if (family === 4) return blocked.check(text, 'ipv4');
  if (family !== 6) return true;
  if (blocked.check(text, 'ipv6')) return true;
  const embedsLast = lastBitsV4.some((list) => list.check(text, 'ipv6'));
  const isSixToFour = !embedsLast && sixToFour.check(text, 'ipv6');
  const isTeredo = !embedsLast && !isSixToFour && teredo.check(text, 'ipv6');
  if (!embedsLast && !isSixToFour && !isTeredo) return false;
  const groups = groupsOf(text);
  if (groups === null) return true;
  const g = (i: number): number => groups[i] ?? 0;
  if (embedsLast) return blocked.check(v4Of(g(6), g(7)), 'ipv4');
  if (isSixToFour) return blocked.check(v4Of(g(1), g(2)), 'ipv4');
  return blocked.check(v4Of(g(2), g(3)), 'ipv4') || blocked.check(v4Of(g(6) ^ 0xffff, g(7) ^ 0xffff), 'ipv4');
}

/** The `code` of the error a guarded lookup fails with; mapUpstreamError turns it into forward_destination_blocked. */
export const DESTINATION_BLOCKED = 'TWOWAY_DESTINATION_BLOCKED';

function blockedError(hostname: string, address: string): NodeJS.ErrnoException {
  // The message (for the log only) names the resolved address; the AppError detail never does.
  const err: NodeJS.ErrnoException = new Error(`${hostname} resolves to blocked address ${address}`);
  err.code = DESTINATION_BLOCKED;
  return err;
}

function guarded(
  hostname: string,
  options: dns.LookupOptions,
  callback: (
    err: NodeJS.ErrnoException | null,
    address: string | dns.LookupAddress[],
    family?: number,
  ) => void,
): void {
  // Resolve every address and refuse when any is blocked, rather than pick a safe one: an attacker's
  // DNS can answer one public and one private address (DNS rebinding across a round-robin set).
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) {
      callback(err, '');
      return;
    }
    const first = addresses[0];
    if (first === undefined) {
      const none: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
      none.code = 'ENOTFOUND';
      callback(none, '');
      return;
    }
    for (const entry of addresses) {
      if (isBlockedAddress(entry.address)) {
        callback(blockedError(hostname, entry.address), '');
        return;
      }
    }
    if (options.all) callback(null, addresses);
    else callback(null, first.address, first.family);
  });
}

/**
 * A `lookup` for net/tls.connect (undici passes it through its `connect` options to tls.connect).
 * With `allowPrivate` false it resolves all addresses with dns.lookup and fails with an error whose
 * `code` is `TWOWAY_DESTINATION_BLOCKED` when any of them is blocked; the check runs on the very
 * addresses the socket connects to, so a name cannot be re-resolved to a private address after a
 * check (DNS rebinding). With `allowPrivate` true it is plain dns.lookup. Node does not call
 * `lookup` for IP literals: {@link parseForwardUrl} checks those.
 */
export function guardedLookup(allowPrivate: boolean): net.LookupFunction {
  return allowPrivate ? (dns.lookup as unknown as net.LookupFunction) : (guarded as net.LookupFunction);
}

/**
 * Parses and checks a `Twoway-Forward-Url` value (API.md, Runtime): an absolute `https:` URL
 * without userinfo, with a host and a port in 1..65535 (default 443). An IP-literal host is checked
 * with {@link isBlockedAddress} here, since no lookup runs for it; names are checked after DNS by
 * {@link guardedLookup}. The WHATWG parser has already normalised `0x7f.1`-style IPv4 forms.
 * @throws AppError `forward_url_invalid` (400) for a missing, malformed or non-https URL;
 *   `forward_destination_blocked` (403) for a blocked IP literal unless `allowPrivate`.
 */
export function parseForwardUrl(raw: string | undefined, allowPrivate: boolean): URL {
  if (raw === undefined || raw.length === 0) {
    throw new AppError('forward_url_invalid', 'The Twoway-Forward-Url header is missing.');
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw new AppError('forward_url_invalid', 'The Twoway-Forward-Url header is not an absolute URL.', {
      cause,
    });
  }
  if (url.protocol !== 'https:') {
    throw new AppError('forward_url_invalid', 'The forward URL must use https.');
  }
  if (url.username !== '' || url.password !== '') {
    throw new AppError('forward_url_invalid', 'The forward URL must not carry credentials.');
  }
  if (url.hostname === '') {
    throw new AppError('forward_url_invalid', 'The forward URL has no host.');
  }
  // The parser drops the default port and refuses ports above 65535; port 0 is the one left to refuse.
  if (url.port === '0') {
    throw new AppError('forward_url_invalid', 'The forward URL port must be 1 to 65535.');
  }
  if (!allowPrivate) {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (net.isIP(host) !== 0 && isBlockedAddress(host)) {
      throw new AppError('forward_destination_blocked', 'The forward URL points to a blocked address.');
    }
  }
  return url;
}
