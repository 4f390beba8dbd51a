/**
 * Where sentry-xdp keeps things. Each can be moved by an option or an
 * environment variable (tests point them at their own places).
 */
import { SentryError } from '../errors.js';

export interface Paths {
  pinRoot: string; // bpffs: maps, the program, links/<ifname>
  runDir: string; // pid file, watch.json
  stateDir: string; // the ban journal, the allow list
}

export const SYS_BPF = '/sys/fs/bpf';

export function resolvePaths(opts: { pinRoot?: string | undefined; runDir?: string | undefined; stateDir?: string | undefined } = {}): Paths {
  return {
    stateDir: opts.stateDir ?? process.env.SENTRY_XDP_STATE_DIR ?? '/var/lib/sentry-xdp',
    pinRoot: opts.pinRoot ?? process.env.SENTRY_XDP_PIN_ROOT ?? `${SYS_BPF}/sentry-xdp`,
    runDir: opts.runDir ?? process.env.SENTRY_XDP_RUN_DIR ?? '/run/sentry-xdp',
  };
}

/** What is at the pin root before sentry-xdp touches it. */
export type PinRootState =
  | { kind: 'bpffs' } // a directory on bpffs
  | { kind: 'empty' } // an empty directory elsewhere
  | { kind: 'files'; names: string[] } // a directory with entries, not on bpffs
  | { kind: 'not-dir' }
  | { kind: 'missing'; under: 'bpffs' | 'sys-bpf' | 'other' }; // what its nearest existing ancestor is

/**
 * use: as it is; mkdir: inside the bpffs it is under; mount-sys-bpf: bpffs on
 * an empty /sys/fs/bpf first (as xdp-tools do), then mkdir; mount: mkdir -p and
 * bpffs on the pin root itself.
 */
export type PinRootStep = 'use' | 'mkdir' | 'mount-sys-bpf' | 'mount';

const PIN_ROOT_HINT = `point --pin-root (or SENTRY_XDP_PIN_ROOT) at a new or empty directory, or at a directory on bpffs such as ${SYS_BPF}/sentry-xdp`;

/**
 * The pin root is bpffs or a directory sentry-xdp may mount bpffs on: one that
 * does not exist yet or is empty. bpffs mounted over files would hide them, and
 * `detach --all` could not give them back. Refuses before anything is touched.
 */
export function pinRootStep(pinRoot: string, s: PinRootState): PinRootStep {
  switch (s.kind) {
    case 'bpffs':
      return 'use';
    case 'empty':
      return 'mount';
    case 'missing':
      return s.under === 'bpffs' ? 'mkdir' : s.under === 'sys-bpf' ? 'mount-sys-bpf' : 'mount';
    case 'not-dir':
      throw new SentryError('USAGE', `the pin root ${pinRoot} is not a directory`, PIN_ROOT_HINT);
    case 'files': {
      const shown = s.names.slice(0, 3).join(', ') + (s.names.length > 3 ? `, ... (${s.names.length} entries)` : '');
      throw new SentryError('USAGE', `the pin root ${pinRoot} holds files (${shown}) and is not on bpffs: mounting bpffs there would hide them`, PIN_ROOT_HINT);
    }
  }
}
