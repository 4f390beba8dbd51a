/** `attach` and `detach`: the program onto interfaces (and the daemon), and off them again. */
import * as cmd from '../../daemon/commands.js';
import { makeReporter } from '../../daemon/daemon.js';
import { out } from '../io.js';
import { defineVerb } from '../verb.js';

export const attach = defineVerb<{ mode: 'auto' | 'native' | 'generic'; daemon: boolean; detachOnExit?: boolean; json?: boolean }>({
  name: 'attach',
  summary: 'load (or adopt) the XDP program, attach it, and run the daemon in the foreground',
  arguments: [{ name: '<iface...>', description: 'interfaces to attach to, e.g. eth0 eth1' }],
  options: [
    { flags: '--mode <mode>', description: 'XDP attach mode', choices: ['auto', 'native', 'generic'], default: 'auto' },
    { flags: '--no-daemon', description: 'attach and return' },
    { flags: '--detach-on-exit', description: 'detach from the interfaces when the daemon stops' },
    { flags: '--json', description: 'print JSON lines (NDJSON) instead of PortSentry-style lines' },
  ],
  examples: [
    'sentry-xdp attach eth0',
    'sentry-xdp -c /etc/sentry-xdp/gw.yaml attach eth0 ppp0',
    'sentry-xdp attach eth1 --no-daemon',
    'sentry-xdp attach eth0 --json | jq .',
  ],
  run: async ({ operands, opts, paths, configFlag }) => {
    const ac = new AbortController();
    const stop = () => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await cmd.attach({
      ifaces: operands,
      config: configFlag, // the file named, else attach's own default (not a running daemon's)
      mode: opts.mode,
      daemon: opts.daemon,
      detachOnExit: Boolean(opts.detachOnExit),
      paths: paths(),
      reporter: makeReporter(Boolean(opts.json), out),
      signal: ac.signal,
    });
  },
});

export const detach = defineVerb<{ all?: boolean }>({
  name: 'detach',
  summary: 'detach from interfaces; --all also removes the program, the maps and every ban',
  arguments: [{ name: '[iface...]', description: 'interfaces to detach from' }],
  options: [{ flags: '--all', description: 'detach everywhere and remove everything sentry-xdp pinned (-c: the config naming the nftables table)' }],
  examples: ['sentry-xdp detach eth1', 'sentry-xdp detach --all'],
  run: async ({ operands, opts, paths, config }) => {
    const gone = await cmd.detach(operands, Boolean(opts.all), paths(), config());
    if (opts.all) out(`detached from ${gone.length ? gone.join(', ') : 'no interface'}; removed the program, maps and bans`);
    else out(`detached from ${gone.join(', ')}`);
  },
});
