/** `status` and `reload`: what is loaded and how healthy it is; a running daemon told to re-read its config. */
import * as cmd from '../../daemon/commands.js';
import { formatPortList } from '../../core/ports.js';
import { JSON_FORMAT_VERSION } from '../../core/json-format.js';
import { out } from '../io.js';
import { defineVerb } from '../verb.js';

function interfaceLine(i: cmd.StatusIface): string {
  const how =
    i.state === 'attached'
      ? `ifindex ${i.ifindex}  ${i.mode} mode  program id ${i.progId}`
      : i.state === 'stale'
        ? 'gone (stale link; no daemon to attach it again)'
        : `${i.state.toUpperCase()}${i.reason ? ` (${i.reason})` : ''}`;
  return `  ${i.name.padEnd(16)} ${how}`;
}

/** What is loaded, where it is attached, what it watches and protects. */
function statusHeader(s: cmd.Status): string[] {
  const lines = [
    `pin root: ${s.pinRoot}`,
    `config: ${s.config}${s.daemonPid ? " (the daemon's; commands without -c use it)" : ''}`,
    `daemon: ${s.daemonPid ? `running (pid ${s.daemonPid})` : 'not running (bans are still enforced by the kernel)'}`,
    'interfaces:',
  ];
  if (!s.interfaces.length) lines.push('  (none attached)');
  lines.push(...s.interfaces.map(interfaceLine));
  if (s.watch) {
    lines.push(`watched TCP ports (${s.watch.tcp.length}): ${formatPortList(s.watch.tcp) || '(none)'}`);
    lines.push(`watched UDP ports (${s.watch.udp.length}): ${formatPortList(s.watch.udp) || '(none)'}`);
    for (const k of s.watch.skipped) lines.push(`skipped ${k.proto.toUpperCase()} ${k.port}: ${k.reason}`);
  }
  if (s.scope) {
    const nets = s.scope.networks.length
      ? `${s.scope.networks.join(', ')} (${s.scope.servicePorts} service port(s) exempt)`
      : 'none (forwarded traffic is never a probe)';
    lines.push(`protected: this host's ${s.scope.hostAddresses.length} address(es); networks: ${nets}`);
  }
  if (s.awareness) {
    const peers =
      s.awareness.livePeers === null
        ? 'not followed (no daemon, or conntrack events unavailable)'
        : `${s.awareness.livePeers} address(es) with live connections`;
    lines.push(
      `connections: local sockets; conntrack lookups ${s.awareness.conntrack ? 'on (XDP kfuncs)' : 'not available on this kernel'}; live peers ${peers}`,
    );
  }
  if (s.multiBuffer !== undefined)
    lines.push(`program: ${s.multiBuffer ? 'multi-buffer XDP (xdp.frags; jumbo MTUs OK)' : 'single-buffer XDP (no xdp.frags on this kernel)'}`);
  return lines;
}

/** The kernel's counters and the daemon's totals, one labelled row each. */
function counterRows(s: cmd.Status): [string, string | number | undefined][] {
  const c = s.counters;
  const rows: [string, string | number | undefined][] = [
    ['packets seen', c.seen],
    ['passed', c.passed],
    ['dropped (banned)', c.dropped],
    ['probes', `syn ${c.probeSyn} fin ${c.probeFin} null ${c.probeNull} xmas ${c.probeXmas} unknown ${c.probeUnknown} udp ${c.probeUdp}`],
    ['evasion and sweeps', `fragments ${c.probeFrag} ack ${c.probeAck} maimon ${c.probeMaimon} sweep ${c.probeSweep} ipv6-chain ${c.probeV6chain}`],
    ['evasion frags dropped', c.evasionDropped],
    ['alerts', c.alerts],
    ['bans added by kernel', c.bansAdded],
    ['bans in force', s.bansInForce],
    ['ring-buffer lost', c.rbLost],
    ['allow-list passes', c.allowed],
    ['unparsed / non-IP', `${c.unparsed} / ${c.nonIp}`],
    ['fragments passed', c.fragments],
    ['not probes: socket', c.localSocket],
    ['not probes: other', `not protected ${c.notProtected}, service ${c.service}, conntrack ${c.conntrack}`],
    ['possibly spoofed', c.livePeer],
    ['ban table full', c.banTableFull],
    ['bans refused by cap', c.banCapped],
    ['never-ban alerts', c.neverBan],
  ];
  if (s.daemon) {
    const d = s.daemon as {
      bansExpired?: number;
      evicted?: number;
      nftHealthy?: boolean | null;
      hooks?: { started: number; failed: number; timedOut: number };
    };
    rows.push(['bans expired (daemon)', d.bansExpired], ['bans evicted (cap)', d.evicted]);
    rows.push(['nftables', d.nftHealthy === null ? 'off' : d.nftHealthy ? 'in step' : 'FAILING (see the daemon log)']);
    if (d.hooks) rows.push(['hooks run/failed/killed', `${d.hooks.started} / ${d.hooks.failed} / ${d.hooks.timedOut}`]);
  }
  return rows;
}

export function statusText(s: cmd.Status): string[] {
  if (!s.loaded) return [`sentry-xdp is not loaded (nothing pinned in ${s.pinRoot}); start it with \`sentry-xdp attach IFACE\``];
  return [
    ...statusHeader(s),
    'counters:',
    ...counterRows(s).map(([label, v]) => `  ${label.padEnd(22)} ${v ?? 0}`),
    `health: ${s.health === 'ok' ? 'ok (everything asked for is protected)' : `${s.health.toUpperCase()}: ${s.problems.join('; ')}`}`,
  ];
}

export const status = defineVerb<{ json?: boolean }>({
  name: 'status',
  summary: 'attached interfaces, watched ports, counters and health; exits 0 protected, 1 degraded, 3 not running',
  options: [{ flags: '--json', description: 'print JSON' }],
  examples: [
    'sentry-xdp status',
    'sentry-xdp status --json | jq .counters.dropped',
    'sentry-xdp status >/dev/null; echo $?   # 0 ok, 1 degraded, 3 not running',
  ],
  run: ({ opts, paths }) => {
    const s = cmd.status(paths());
    const { health, problems, ...rest } = s; // the verdict first
    const lines = opts.json ? JSON.stringify({ version: JSON_FORMAT_VERSION, health, problems, ...rest }, null, 2).split('\n') : statusText(s);
    for (const l of lines) out(l);
    process.exitCode = cmd.STATUS_EXIT[s.health]; // as LSB init scripts and systemctl: health checks use it
  },
});

export const reload = defineVerb({
  name: 'reload',
  summary: 'make the running daemon re-read its config (SIGHUP); a config that fails validation is refused and the running one stays',
  examples: ['sentry-xdp config check && sentry-xdp reload'],
  run: ({ paths }) => {
    const pid = cmd.reload(paths());
    out(`sent SIGHUP to the daemon (pid ${pid}); its log says whether the new config was taken`);
  },
});
