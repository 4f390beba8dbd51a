/**
 * `ban --file PATH|-`: one address or CIDR per line, `#` comments. Read as a
 * stream (a pipe as well as a file), with a limit on the length of a line, so
 * that `--file /dev/zero` is refused instead of filling memory. Exact IPv4
 * addresses (nearly all of a big list) are kept packed as numbers: a million
 * of them take 4 MB. All or nothing: one bad line refuses the whole file.
 */
import { createReadStream } from 'node:fs';
import split2 from 'split2';
import { DOTTED_QUAD, parseCidr, type Cidr } from '../core/addr.js';
import { SentryError } from '../errors.js';

/** Longer than any address, CIDR and comment a list has. */
export const MAX_LINE = 4096;
/** More than the kernel's tables hold (1.2M IPv4, 256k IPv6 and 64k CIDRs per family). */
const MAX_ENTRIES = 2_000_000;

/** Targets, de-duplicated: exact IPv4 addresses as numbers (sorted), the rest as CIDRs. */
export interface TargetList {
  v4: Uint32Array;
  others: Cidr[];
}

export function targetCount(l: TargetList): number {
  return l.v4.length + l.others.length;
}

/** An exact IPv4 address, from its number. */
export function v4Cidr(n: number): Cidr {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(n >>> 0);
  return { family: 4, bytes, prefix: 32, text: `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}` };
}

/** Collects targets: exact IPv4 packed, the rest by canonical text. */
export class TargetCollector {
  private v4 = new Uint32Array(1024);
  private n4 = 0;
  private readonly others = new Map<string, Cidr>();

  get size(): number {
    return this.n4 + this.others.size;
  }

  /** Adds one entry; throws parseCidr's SentryError for a bad one. */
  add(entry: string): void {
    const q = DOTTED_QUAD.exec(entry);
    if (q) return this.addV4(((+q[1]! << 24) | (+q[2]! << 16) | (+q[3]! << 8) | +q[4]!) >>> 0);
    const c = parseCidr(entry);
    if (c.family === 4 && c.prefix === 32) return this.addV4(c.bytes.readUInt32BE(0));
    this.others.set(c.text, c);
  }

  private addV4(n: number): void {
    if (this.n4 === this.v4.length) {
      const bigger = new Uint32Array(this.v4.length * 2);
      bigger.set(this.v4);
      this.v4 = bigger;
    }
    this.v4[this.n4++] = n;
  }

  done(): TargetList {
    const v4 = this.v4.subarray(0, this.n4).sort();
    let u = 0;
    for (let i = 0; i < v4.length; i++) if (i === 0 || v4[i] !== v4[u - 1]) v4[u++] = v4[i]!;
    return { v4: v4.slice(0, u), others: [...this.others.values()] };
  }
}

/** Reads a ban list from a file, or from stdin for "-", into `into`. */
export async function readBanFile(path: string, into: TargetCollector): Promise<void> {
  const name = path === '-' ? 'stdin' : path;
  const input = path === '-' ? process.stdin : createReadStream(path);
  const lines = split2({ maxLength: MAX_LINE });
  input.on('error', (e: Error) => lines.destroy(e));
  let n = 0;
  let entries = 0;
  try {
    for await (const raw of input.pipe(lines) as AsyncIterable<string>) {
      n++;
      const entry = raw.replace(/#.*/, '').trim();
      if (!entry) continue;
      try {
        into.add(entry);
      } catch (e) {
        const err = e as SentryError;
        throw new SentryError('USAGE', `${name}:${n}: ${err.message}; nothing was banned`, `fix that line and run again (${err.hint})`);
      }
      if (++entries > MAX_ENTRIES)
        throw new SentryError(
          'USAGE',
          `${name}: more than ${MAX_ENTRIES} entries; nothing was banned`,
          'split the list; the kernel tables hold 1.2M IPv4 addresses',
        );
    }
  } catch (e) {
    if (e instanceof SentryError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.code) throw new SentryError('USAGE', `${name}: cannot read it (${err.code}); nothing was banned`, 'check the path given to --file');
    throw new SentryError('USAGE', `${name}: a line longer than ${MAX_LINE} characters; nothing was banned`, 'give a list of addresses or CIDRs, one per line');
  } finally {
    if (input !== process.stdin) input.destroy();
  }
  if (!entries) throw new SentryError('USAGE', `${name}: no addresses in it; nothing was banned`, 'one address or CIDR per line, # for comments');
}
