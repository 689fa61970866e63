import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors/app-error.js';
import { guardedLookup, isBlockedAddress, parseForwardUrl } from '../../../src/net/address-guard.js';

const blocked: Array<[string, string]> = [
  ['127.0.0.1', 'IPv4 loopback'],
  ['127.255.255.254', 'IPv4 loopback, end of 127/8'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'this network 0/8'],
  ['10.0.0.1', 'private 10/8'],
  ['172.16.0.1', 'private 172.16/12, start'],
  ['172.31.255.255', 'private 172.16/12, end'],
  ['192.168.1.1', 'private 192.168/16'],
  ['169.254.169.254', 'cloud metadata'],
  ['168.63.129.16', 'Azure host endpoint'],
  ['::ffff:168.63.129.16', 'Azure host endpoint, IPv4-mapped'],
  ['2001:20::1', 'ORCHIDv2'],
  ['169.254.0.1', 'link-local'],
  ['100.64.0.1', 'CGNAT'],
  ['100.127.255.255', 'CGNAT end'],
  ['198.18.0.1', 'benchmarking'],
  ['198.19.255.255', 'benchmarking end'],
  ['192.0.0.8', 'IETF protocol assignments'],
  ['192.0.2.10', 'TEST-NET-1'],
  ['198.51.100.7', 'TEST-NET-2'],
  ['203.0.113.9', 'TEST-NET-3'],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast SSDP'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.255', 'broadcast'],
  ['::1', 'IPv6 loopback'],
  ['::', 'IPv6 unspecified'],
  ['fc00::1', 'unique local fc00::/7'],
  ['fd12:3456::1', 'unique local fd'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local with zone'],
  ['[fe80::1]', 'link-local in brackets'],
  ['febf::1', 'link-local, end of fe80::/10'],
  ['fec0::1', 'site-local'],
  ['ff02::1', 'multicast'],
  ['2001:db8::1', 'documentation'],
  ['3fff::1', 'documentation 3fff::/20'],
  ['100::1', 'discard-only'],
  ['2001:2::1', 'benchmarking'],
  ['64:ff9b:1::1', 'local-use NAT64'],
  ['::ffff:127.0.0.1', 'IPv4-mapped loopback, dotted'],
  ['::ffff:7f00:1', 'IPv4-mapped loopback, hex'],
  ['::ffff:169.254.169.254', 'IPv4-mapped metadata'],
  ['::ffff:a9fe:a9fe', 'IPv4-mapped metadata, hex'],
  ['::ffff:10.1.2.3', 'IPv4-mapped private'],
  ['0:0:0:0:0:ffff:c0a8:101', 'IPv4-mapped private, uncompressed'],
  ['::127.0.0.1', 'IPv4-compatible loopback'],
  ['::a00:1', 'IPv4-compatible private, hex'],
  ['64:ff9b::7f00:1', 'NAT64 loopback'],
  ['64:ff9b::169.254.169.254', 'NAT64 metadata'],
  ['64:ff9b::a00:1', 'NAT64 private'],
  ['::ffff:0:a00:1', 'SIIT IPv4-translated private'],
  ['2002:7f00:1::1', '6to4 of loopback'],
  ['2002:a9fe:a9fe::', '6to4 of metadata'],
  ['2002:c0a8:101:1::1', '6to4 of 192.168.1.1'],
  ['2001:0:4136:e378:8000:63bf:f5ff:fffe', 'Teredo, client 10.0.0.1'],
  ['2001:0:7f00:1::1', 'Teredo, server 127.0.0.1'],
  ['not-an-ip', 'not an address: fail closed'],
  ['', 'empty'],
  ['1.2.3', 'incomplete IPv4'],
];

const allowed: Array<[string, string]> = [
  ['8.8.8.8', 'public IPv4'],
  ['1.1.1.1', 'public IPv4'],
  ['93.184.215.14', 'public IPv4'],
  ['100.63.255.255', 'just below CGNAT'],
  ['100.128.0.0', 'just above CGNAT'],
  ['172.15.255.255', 'just below 172.16/12'],
  ['172.32.0.0', 'just above 172.16/12'],
  ['169.253.255.255', 'just below link-local'],
  ['198.17.255.255', 'just below benchmarking'],
  ['198.20.0.0', 'just above benchmarking'],
  ['223.255.255.255', 'just below multicast'],
  ['2606:4700::1111', 'public IPv6'],
  ['2001:4860:4860::8888', 'public IPv6'],
  ['2a00:1450:4001::200e', 'public IPv6'],
  ['::ffff:8.8.8.8', 'IPv4-mapped public'],
  ['64:ff9b::808:808', 'NAT64 public'],
  ['2002:808:808::1', '6to4 of public'],
  ['2001:0:4136:e378:8000:63bf:f7f7:f7f7', 'Teredo, client 8.8.8.8, server 65.54.227.120'],
];

describe('isBlockedAddress', () => {
  it.each(blocked)('blocks %s (%s)', (address) => {
    expect(isBlockedAddress(address)).toBe(true);
  });

  it.each(allowed)('allows %s (%s)', (address) => {
    expect(isBlockedAddress(address)).toBe(false);
  });
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return (err as AppError).code;
  }
  return undefined;
}

describe('parseForwardUrl', () => {
  it('accepts an absolute https URL and keeps path and query', () => {
    const url = parseForwardUrl('https://api.example.com:8443/v1/items?x=1', false);
    expect(url.hostname).toBe('api.example.com');
    expect(url.port).toBe('8443');
    expect(url.pathname + url.search).toBe('/v1/items?x=1');
  });

  it.each<[string | undefined, string]>([
    [undefined, 'missing'],
    ['', 'empty'],
    ['http://api.example.com/', 'plain http'],
    ['ftp://api.example.com/', 'another scheme'],
    ['/v1/items', 'relative'],
    ['api.example.com/v1', 'no scheme'],
    ['https://user:secret@api.example.com/', 'userinfo'],
    ['https://user@api.example.com/', 'username only'],
    ['https://', 'no host'],
    ['https://api.example.com:0/', 'port 0'],
    ['https://api.example.com:65536/', 'port above 65535'],
    ['https://exa mple.com/', 'garbage host'],
    ['not a url at all', 'garbage'],
  ])('refuses %s (%s) with forward_url_invalid', (raw) => {
    expect(codeOf(() => parseForwardUrl(raw, true))).toBe('forward_url_invalid');
  });

  it.each([
    ['https://127.0.0.1:8443/', 'loopback literal'],
    ['https://[::1]/', 'IPv6 loopback literal'],
    ['https://169.254.169.254/latest/meta-data/', 'metadata literal'],
    ['https://[::ffff:169.254.169.254]/', 'mapped metadata literal'],
    ['https://0x7f.1/', 'hex shorthand the URL parser normalises to 127.0.0.1'],
    ['https://2130706433/', 'decimal form of 127.0.0.1'],
    ['https://10.0.0.1/', 'private literal'],
  ])('refuses %s (%s) with forward_destination_blocked unless allowPrivate', (raw) => {
    expect(codeOf(() => parseForwardUrl(raw, false))).toBe('forward_destination_blocked');
    expect(parseForwardUrl(raw, true)).toBeInstanceOf(URL);
  });

  it('leaves names to the lookup: a name is not refused before DNS', () => {
    expect(parseForwardUrl('https://localhost:8443/', false).hostname).toBe('localhost');
  });
});

describe('guardedLookup', () => {
  function lookup(allowPrivate: boolean, hostname: string, all: boolean) {
    return new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[] }>(
      (resolve) => {
        guardedLookup(allowPrivate)(hostname, { all }, (err, address) => resolve({ err, address }));
      },
    );
  }

  it('refuses a name that resolves to loopback', async () => {
    const { err } = await lookup(false, 'localhost', false);
    expect(err?.code).toBe('TWOWAY_DESTINATION_BLOCKED');
  });

  it('refuses it in the all-addresses form that Happy Eyeballs uses', async () => {
    const { err } = await lookup(false, 'localhost', true);
    expect(err?.code).toBe('TWOWAY_DESTINATION_BLOCKED');
  });

  it('resolves it when private destinations are allowed', async () => {
    const { err, address } = await lookup(true, 'localhost', false);
    expect(err).toBeNull();
    expect(isBlockedAddress(address as string)).toBe(true);
  });
});
