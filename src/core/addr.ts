import ipaddr from 'ipaddr.js';
import { SentryError } from '../errors.js';

/** A parsed address or network: family, network bytes, prefix length. */
export interface Cidr {
  family: 4 | 6;
  bytes: Buffer; // 4 or 16 bytes, network byte order, host bits cleared
  prefix: number;
  text: string; // canonical form, "/N" only when it is a network
}

/**
 * Parses "1.2.3.4", "2001:db8::1", "203.0.113.0/24", "2001:db8::/48".
 * Rejects "/33", "300.1.1.1" and anything else with a one-line reason.
 */
/** A plain IPv4 address in canonical dotted-quad form (no leading zeros). */
export const DOTTED_QUAD = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseCidr(input: string): Cidr {
  const text = input.trim();
  // fast path for the common case (bulk files, restores): a plain IPv4 address
  const q = DOTTED_QUAD.exec(text);
  if (q) {
    const bytes = Buffer.from([Number(q[1]), Number(q[2]), Number(q[3]), Number(q[4])]);
    return { family: 4, bytes, prefix: 32, text };
  }
  const [addrText, prefixText, extra] = text.split('/');
  if (extra !== undefined || !addrText) throw badAddress(input, 'write an address or a CIDR like 203.0.113.0/24');
  if (!ipaddr.isValid(addrText) || (addrText.includes('.') && !ipaddr.IPv4.isValidFourPartDecimal(addrText) && !addrText.includes(':'))) {
    throw badAddress(input, 'IPv4 is four numbers 0-255 (1.2.3.4), IPv6 like 2001:db8::1');
  }
  let addr = ipaddr.parse(addrText);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  const family = addr.kind() === 'ipv4' ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
      throw badAddress(input, `the prefix length of an IPv${family} network is 0-${max}`);
    }
    prefix = Number(prefixText);
  }
  const bytes = Buffer.from(addr.toByteArray());
  for (let bit = prefix; bit < max; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  const base = ipaddr.fromByteArray([...bytes]).toString();
  return { family, bytes, prefix, text: prefix === max ? base : `${base}/${prefix}` };
}

function badAddress(input: string, hint: string): SentryError {
  return new SentryError('USAGE', `"${input}" is not a valid IP address or CIDR`, hint);
}

/** An address in the kernel's 16-byte form (IPv4 as ::ffff:a.b.c.d), the key of per-source maps. */
export function addrToKey16(c: Cidr): Buffer {
  if (c.family === 6) return Buffer.from(c.bytes);
  const b = Buffer.alloc(16);
  b[10] = 0xff;
  b[11] = 0xff;
  c.bytes.copy(b, 12);
  return b;
}

/** 16-byte kernel form (IPv4 as ::ffff:a.b.c.d) to text. */
export function addr16ToString(b: Buffer): string {
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  return ipaddr.fromByteArray([...b.subarray(0, 16)]).toString();
}
