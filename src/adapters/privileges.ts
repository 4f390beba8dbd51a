import { readFileSync } from 'node:fs';
import { SentryError } from '../errors.js';

const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;
const CAP_BPF = 39n;

/** Effective capabilities of this process, from /proc/self/status. */
function effectiveCaps(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

/** Loading and attaching XDP needs CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_ADMIN. */
export function requirePrivileges(verb: string): void {
  const caps = effectiveCaps();
  const has = (c: bigint) => (caps >> c) & 1n;
  if ((has(CAP_BPF) || has(CAP_SYS_ADMIN)) && has(CAP_NET_ADMIN)) return;
  throw new SentryError('NOT_ROOT', `${verb} needs root (CAP_BPF and CAP_NET_ADMIN)`, `run it as root, e.g. \`sudo sentry-xdp ${verb}\``);
}
