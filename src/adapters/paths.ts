/**
 * Where sentry-xdp keeps things. Each can be moved by an option or an
 * environment variable (tests point them at their own places).
 */
export interface Paths {
  pinRoot: string; // bpffs: maps, the program, links/<ifname>
  runDir: string; // pid file, watch.json
  stateDir: string; // the ban journal, the allow list
}

export function resolvePaths(
  opts: { pinRoot?: string | undefined; runDir?: string | undefined; stateDir?: string | undefined } = {},
): Paths {
  return {
    stateDir: opts.stateDir ?? process.env.SENTRY_XDP_STATE_DIR ?? '/var/lib/sentry-xdp',
    pinRoot: opts.pinRoot ?? process.env.SENTRY_XDP_PIN_ROOT ?? '/sys/fs/bpf/sentry-xdp',
    runDir: opts.runDir ?? process.env.SENTRY_XDP_RUN_DIR ?? '/run/sentry-xdp',
  };
}
