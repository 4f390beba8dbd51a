/**
 * Untrusted text (ban reasons, names from reverse DNS, fleet peers' fields,
 * anything read back from Redis or the journal) made safe to print or log.
 */
import ipaddr from 'ipaddr.js';

/**
 * C0 controls and DEL (newlines forge log lines, ESC drives the terminal),
 * C1 controls (CSI U+009B is ESC[ to many terminals), and the Unicode line
 * separators and bidi controls, which reorder what a reader sees ("Trojan
 * Source").
 */
// eslint-disable-next-line no-control-regex -- matching control characters is this pattern's purpose
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');

/**
 * Every unsafe character as a visible \uXXXX escape. The output stays one
 * line, shows what was there, and is still valid inside JSON text (JSON
 * already escapes C0 itself; this escapes the rest the same way).
 */
export function printable(s: string): string {
  return s.replace(UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** True when s holds a character printable() would escape. */
export function hasUnsafeChars(s: string): boolean {
  return UNSAFE.test(s);
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/**
 * A DNS host name as RFC 1123 writes it (letters, digits, inner hyphens; labels
 * of 1-63, 253 in all), lower-cased and without the root dot; undefined for
 * anything else. A PTR record is the attacker's to write: spaces, slashes or an
 * address literal ("10.0.0.1", "1.2.3.0x4") in a name would put a fake source
 * into alert lines, so such names are not shown at all.
 */
export function hostName(name: string): string | undefined {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  if (n.length === 0 || n.length > 253) return undefined;
  const labels = n.split('.');
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  // an all-numeric last label is no top-level domain (RFC 3696 2), and looks like an address
  if (/^\d+$/.test(labels[labels.length - 1]!) || ipaddr.isValid(n)) return undefined;
  return n.toLowerCase();
}

/** printable() for a message inside a log line or report: trimmed, and at most `max` characters. */
export function oneLine(s: string, max = 400): string {
  const t = printable(s.trim());
  return t.length > max ? `${t.slice(0, max - 3)}...` : t;
}
