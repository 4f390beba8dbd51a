import ipaddr from 'ipaddr.js';
import { SentryError } from '../errors.js';

/** A parsed address or network: family, network bytes, prefix length. */
export interface Cidr {
  family: 4 | 6;
  bytes: Buffer; // 4 or 16 bytes, network byte order, host bits cleared
  prefix: number;
  text: string; // canonical form, "/N" only when it is a network
}

/** A plain IPv4 address in canonical dotted-quad form (no leading zeros). */
export const DOTTED_QUAD =
  /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

const ADDRESS_HINT = 'IPv4 is four decimal numbers 0-255 (1.2.3.4; no shorthands like 10, 0x0a or 010.1.1.1), IPv6 like 2001:db8::1';

/**
 * Parses "1.2.3.4", "2001:db8::1", "203.0.113.0/24", "2001:db8::/48".
 * Rejects "/33", "300.1.1.1" and anything else with a one-line reason.
 *
 * The text form is checked before ipaddr.js reads it: ipaddr.js (like
 * inet_aton) takes "10" as 0.0.0.10 and "0x0a" or "01.2.3.4" as addresses the
 * admin may not have meant, and keeps IPv6 zone ids, which a ban table keyed
 * by address cannot honour. Only four decimal numbers, or IPv6 hex groups
 * (optionally ending in a dotted quad), get through.
 */
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
  const addr = strictAddress(input, addrText);
  const family = addr.kind() === 'ipv4' ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > max) {
      throw badAddress(input, `the prefix length of an IPv${family} network is 0-${max}`);
    }
    prefix = Number(prefixText);
  }
  const bytes = Buffer.from(addr.toByteArray());
  for (let bit = prefix; bit < max; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  const base = ipaddr.fromByteArray([...bytes]).toString();
  return { family, bytes, prefix, text: prefix === max ? base : `${base}/${prefix}` };
}

/** The address part of a CIDR in one of the two strict text forms; IPv4-mapped IPv6 becomes IPv4. */
function strictAddress(input: string, text: string): ipaddr.IPv4 | ipaddr.IPv6 {
  if (text.includes('%')) {
    const zone = text.slice(text.indexOf('%'));
    throw new SentryError(
      'USAGE',
      `"${input}" has an IPv6 zone id (${zone}), which is not accepted`,
      'write the address without it: a ban or list entry covers the address on every interface',
    );
  }
  if (DOTTED_QUAD.test(text)) return ipaddr.IPv4.parse(text);
  const tail = text.slice(text.lastIndexOf(':') + 1);
  const v6 = text.includes(':') && /^[0-9A-Fa-f:.]+$/.test(text) && (!tail.includes('.') || DOTTED_QUAD.test(tail)) && ipaddr.IPv6.isValid(text);
  if (!v6) throw badAddress(input, ADDRESS_HINT);
  const addr = ipaddr.IPv6.parse(text);
  return addr.isIPv4MappedAddress() ? addr.toIPv4Address() : addr;
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
