#!/usr/bin/env node
/**
 * sentry-xdp's command line: parses argv, calls src/daemon/commands.ts, formats
 * what comes back. Errors become one line on stderr and a non-zero exit.
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatPortList } from '../core/ports.js';
import { exitCodeFor, SentryError } from '../errors.js';
import { PACKAGE_ROOT } from '../adapters/kernel.js';
import { resolvePaths } from '../adapters/paths.js';
import { configFor } from '../adapters/config-file.js';
import { RunDir } from '../adapters/run-dir.js';
import cliProgress from 'cli-progress';
import { printable } from '../core/text.js';
import { formatDuration } from '../core/ttl.js';
import { eventLine, topReport, topText } from '../core/history-report.js';
import * as bans from '../daemon/ban-commands.js';
import * as cmd from '../daemon/commands.js';
import { makeReporter } from '../daemon/daemon.js';
import { defaultsYaml } from '../core/config-doc.js';
import { historyJson, JSON_FORMAT_VERSION, topJson } from '../core/json-format.js';

const version = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface GlobalOpts {
  pinRoot?: string;
  runDir?: string;
  stateDir?: string;
  config?: string;
}

/** Every line goes out through printable(): stored text (reasons, fleet peers' fields) cannot forge lines or drive the terminal. */
function out(line: string): void {
  process.stdout.write(`${printable(line)}\n`);
}

function pathsOf(c: Command) {
  return resolvePaths(c.optsWithGlobals<GlobalOpts>());
}

/** The config file for this command: -c, $SENTRY_XDP_CONFIG, else the running daemon's (src/adapters/config-file.ts configFor). */
function configOf(c: Command): string | undefined {
  return configFor(c.optsWithGlobals<GlobalOpts>().config, new RunDir(pathsOf(c).runDir).daemonConfig(), warn);
}

function warn(line: string): void {
  process.stderr.write(`sentry-xdp: ${printable(line)}\n`);
}

/** A progress bar on a terminal (stderr), nothing otherwise. */
function progressBar(): { update: bans.Progress; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: '{stage} [{bar}] {value}/{total} {percentage}% eta {eta_formatted}', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let stage = '';
  return {
    update: (s, done, total) => {
      if (s !== stage) {
        if (stage) bar.stop();
        stage = s;
        bar.start(total, 0, { stage: s === 'kernel' ? 'kernel table' : s === 'nft' ? 'nftables    ' : 'banning     ' });
      }
      bar.update(done);
    },
    stop: () => stage && bar.stop(),
  };
}

function remaining(e: { remainingSeconds: number | null }): string {
  return e.remainingSeconds === null ? 'permanent' : formatDuration(e.remainingSeconds);
}

function printStatus(s: cmd.Status): void {
  if (!s.loaded) {
    out(`sentry-xdp is not loaded (nothing pinned in ${s.pinRoot}); start it with \`sentry-xdp attach IFACE\``);
    return;
  }
  out(`pin root: ${s.pinRoot}`);
  out(`config: ${s.config}${s.daemonPid ? " (the daemon's; commands without -c use it)" : ''}`);
  out(`daemon: ${s.daemonPid ? `running (pid ${s.daemonPid})` : 'not running (bans are still enforced by the kernel)'}`);
  out('interfaces:');
  if (!s.interfaces.length) out('  (none attached)');
  for (const i of s.interfaces) {
    const how =
      i.state === 'attached'
        ? `ifindex ${i.ifindex}  ${i.mode} mode  program id ${i.progId}`
        : i.state === 'stale'
          ? 'gone (stale link; no daemon to attach it again)'
          : `${i.state.toUpperCase()}${i.reason ? ` (${i.reason})` : ''}`;
    out(`  ${i.name.padEnd(16)} ${how}`);
  }
  if (s.watch) {
    out(`watched TCP ports (${s.watch.tcp.length}): ${formatPortList(s.watch.tcp) || '(none)'}`);
    out(`watched UDP ports (${s.watch.udp.length}): ${formatPortList(s.watch.udp) || '(none)'}`);
    for (const k of s.watch.skipped) out(`skipped ${k.proto.toUpperCase()} ${k.port}: ${k.reason}`);
  }
  if (s.scope) {
    const nets = s.scope.networks.length ? `${s.scope.networks.join(', ')} (${s.scope.servicePorts} service port(s) exempt)` : 'none (forwarded traffic is never a probe)';
    out(`protected: this host's ${s.scope.hostAddresses.length} address(es); networks: ${nets}`);
  }
  if (s.awareness) {
    const peers = s.awareness.livePeers === null ? 'not followed (no daemon, or conntrack events unavailable)' : `${s.awareness.livePeers} address(es) with live connections`;
    out(`connections: local sockets; conntrack lookups ${s.awareness.conntrack ? 'on (XDP kfuncs)' : 'not available on this kernel'}; live peers ${peers}`);
  }
  if (s.multiBuffer !== undefined) out(`program: ${s.multiBuffer ? 'multi-buffer XDP (xdp.frags; jumbo MTUs OK)' : 'single-buffer XDP (no xdp.frags on this kernel)'}`);
  const c = s.counters;
  const row = (label: string, v: string | number | undefined) => out(`  ${label.padEnd(22)} ${v ?? 0}`);
  out('counters:');
  row('packets seen', c.seen);
  row('passed', c.passed);
  row('dropped (banned)', c.dropped);
  row('probes', `syn ${c.probeSyn} fin ${c.probeFin} null ${c.probeNull} xmas ${c.probeXmas} unknown ${c.probeUnknown} udp ${c.probeUdp}`);
  row('evasion and sweeps', `fragments ${c.probeFrag} ack ${c.probeAck} maimon ${c.probeMaimon} sweep ${c.probeSweep} ipv6-chain ${c.probeV6chain}`);
  row('evasion frags dropped', c.evasionDropped);
  row('alerts', c.alerts);
  row('bans added by kernel', c.bansAdded);
  row('bans in force', s.bansInForce);
  row('ring-buffer lost', c.rbLost);
  row('allow-list passes', c.allowed);
  row('unparsed / non-IP', `${c.unparsed} / ${c.nonIp}`);
  row('fragments passed', c.fragments);
  row('not probes: socket', c.localSocket);
  row('not probes: other', `not protected ${c.notProtected}, service ${c.service}, conntrack ${c.conntrack}`);
  row('possibly spoofed', c.livePeer);
  row('ban table full', c.banTableFull);
  row('bans refused by cap', c.banCapped);
  row('never-ban alerts', c.neverBan);
  if (s.daemon) {
    const d = s.daemon as { bansExpired?: number; evicted?: number; nftHealthy?: boolean | null; hooks?: { started: number; failed: number; timedOut: number } };
    row('bans expired (daemon)', d.bansExpired);
    row('bans evicted (cap)', d.evicted);
    row('nftables', d.nftHealthy === null ? 'off' : d.nftHealthy ? 'in step' : 'FAILING (see the daemon log)');
    if (d.hooks) row('hooks run/failed/killed', `${d.hooks.started} / ${d.hooks.failed} / ${d.hooks.timedOut}`);
  }
  out(`health: ${s.health === 'ok' ? 'ok (everything asked for is protected)' : `${s.health.toUpperCase()}: ${s.problems.join('; ')}`}`);
}

/** "Examples:" after a verb's help. */
function examples(c: Command, lines: string[]): Command {
  return c.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

const EXIT_CODES = `
Global options (-c, --pin-root, --run-dir, --state-dir) go before or after the verb.

Exit codes:
  0    ok
  1    failure
  2    bad usage or config
  130  interrupted (Ctrl-C, SIGTERM)
  status: 0 everything protected; 1 degraded (an interface stale or waiting, nftables out of
  step, the history store down); 3 nothing loaded or no daemon running (as LSB and systemctl)

Examples:
  $ sentry-xdp attach eth0
  $ sentry-xdp -c /etc/sentry-xdp/gw.yaml status
  $ sentry-xdp ban 203.0.113.7 --ttl 10m --reason "abuse report"
  $ sentry-xdp config defaults > /etc/sentry-xdp/sentry.yaml
`;

export function buildProgram(): Command {
  const program = new Command('sentry-xdp')
    .description('XDP port-scan detector and blocker (PortSentry, rebuilt)')
    .version(version, '-V, --version', 'print the version (-v too)')
    .addOption(new Option('-v').hideHelp()) // what many type for the version; sentry-xdp has no verbose mode
    .option('-c, --config <file>', 'YAML config (default: $SENTRY_XDP_CONFIG, else the running daemon\'s, else /etc/sentry-xdp/sentry.yaml if present, else built-in defaults)')
    .option('--pin-root <dir>', 'bpffs directory for maps, program and links (env SENTRY_XDP_PIN_ROOT)')
    .option('--run-dir <dir>', 'runtime directory for the pid file and port report (env SENTRY_XDP_RUN_DIR)')
    .option('--state-dir <dir>', 'state directory for the ban journal and allow list (env SENTRY_XDP_STATE_DIR)')
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', EXIT_CODES)
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.split('\n').map(printable).join('\n')), // it echoes argv
      // one line, as every other error: "sentry-xdp: unknown option '--jsn' (did you mean --json?); see --help"
      outputError: (s, write) => {
        const line = s.trim().replace(/^error: /, '').replace(/\s*\n\(Did you mean (.*)\?\)/, ' (did you mean $1?)').replace(/\s*\n\s*/g, ' ').replace(/\.$/, '');
        write(`sentry-xdp: ${line}; see --help\n`);
      },
    });
  program.on('option:v', () => {
    process.stdout.write(`${version}\n`);
    throw new CommanderError(0, 'commander.version', version);
  });

  const attach = program
    .command('attach')
    .description('load (or adopt) the XDP program, attach it, and run the daemon in the foreground')
    .argument('<iface...>', 'interfaces to attach to, e.g. eth0 eth1')
    .addOption(new Option('--mode <mode>', 'XDP attach mode').choices(['auto', 'native', 'generic']).default('auto'))
    .option('--no-daemon', 'attach and return')
    .option('--detach-on-exit', 'detach from the interfaces when the daemon stops')
    .option('--json', 'print JSON lines (NDJSON) instead of PortSentry-style lines')
    .action(async (ifaces: string[], o: { mode: 'auto' | 'native' | 'generic'; daemon: boolean; detachOnExit?: boolean; json?: boolean }, c: Command) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await cmd.attach({
        ifaces,
        config: c.optsWithGlobals<GlobalOpts>().config, // the file named, else attach's own default (not a running daemon's)
        mode: o.mode,
        daemon: o.daemon,
        detachOnExit: Boolean(o.detachOnExit),
        paths: pathsOf(c),
        reporter: makeReporter(Boolean(o.json), out),
        signal: ac.signal,
      });
    });
  examples(attach, ['sentry-xdp attach eth0', 'sentry-xdp -c /etc/sentry-xdp/gw.yaml attach eth0 ppp0', 'sentry-xdp attach eth1 --no-daemon', 'sentry-xdp attach eth0 --json | jq .']);

  const detach = program
    .command('detach')
    .description('detach from interfaces; --all also removes the program, the maps and every ban')
    .argument('[iface...]', 'interfaces to detach from')
    .option('--all', 'detach everywhere and remove everything sentry-xdp pinned (-c: the config naming the nftables table)')
    .action(async (ifaces: string[], o: { all?: boolean }, c: Command) => {
      const gone = await cmd.detach(ifaces, Boolean(o.all), pathsOf(c), configOf(c));
      if (o.all) out(`detached from ${gone.length ? gone.join(', ') : 'no interface'}; removed the program, maps and bans`);
      else out(`detached from ${gone.join(', ')}`);
    });
  examples(detach, ['sentry-xdp detach eth1', 'sentry-xdp detach --all']);

  const status = program
    .command('status')
    .description('attached interfaces, watched ports, counters and health; exits 0 protected, 1 degraded, 3 not running')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }, c: Command) => {
      const s = cmd.status(pathsOf(c));
      const { health, problems, ...rest } = s; // the verdict first
      if (o.json) for (const l of JSON.stringify({ version: JSON_FORMAT_VERSION, health, problems, ...rest }, null, 2).split('\n')) out(l);
      else printStatus(s);
      process.exitCode = cmd.STATUS_EXIT[s.health]; // as LSB init scripts and systemctl: health checks use it
    });
  examples(status, ['sentry-xdp status', 'sentry-xdp status --json | jq .counters.dropped', 'sentry-xdp status >/dev/null; echo $?   # 0 ok, 1 degraded, 3 not running']);

  const ban = program
    .command('ban')
    .description('ban addresses or CIDRs (IPv4 and IPv6) in the kernel table and nftables; works with or without a daemon')
    .argument('[target...]', 'addresses or CIDRs, e.g. 203.0.113.7 2001:db8::/48')
    .option('--ttl <duration>', 'ban length: 90s, 10m, 1h30m, 7d, or permanent (default: the TTL rules, else ban_ttl)')
    .option('--reason <text>', 'why, shown by `list`')
    .option('--file <path>', 'one address or CIDR per line (# comments); - for stdin; all or nothing')
    .action(async (targets: string[], o: { ttl?: string; reason?: string; file?: string }, c: Command) => {
      const bar = progressBar();
      try {
        const r = await bans.ban({ targets, file: o.file, ttl: o.ttl, reason: o.reason, paths: pathsOf(c), config: configOf(c), warn, progress: bar.update });
        bar.stop();
        const ttls = [...r.ttls].map(formatDuration).join(', ');
        if (r.targets.length) for (const t of r.targets) out(`banned ${t} (${ttls})`);
        else out(`banned ${r.count} addresses (${ttls})`);
      } finally {
        bar.stop();
      }
    });
  examples(ban, ['sentry-xdp ban 203.0.113.7 2001:db8:bad::/48 --ttl 10m --reason "abuse report #4711"', 'sentry-xdp ban --file blocklist.txt --ttl 7d', 'curl -s https://example.net/drop.txt | sentry-xdp ban --file - --ttl permanent']);

  const unban = program
    .command('unban')
    .description('lift bans')
    .argument('[target...]', 'addresses or CIDRs')
    .option('--all', 'lift every ban')
    .action(async (targets: string[], o: { all?: boolean }, c: Command) => {
      const r = await bans.unban(targets, Boolean(o.all), pathsOf(c), configOf(c), warn);
      if (o.all) out(`unbanned ${r.removed.length} ban(s)`);
      else for (const t of r.removed) out(`unbanned ${t}`);
      if (r.missing.length) throw new SentryError('NOT_BANNED', `not banned: ${r.missing.join(', ')}`, 'see `sentry-xdp list`');
    });
  examples(unban, ['sentry-xdp unban 203.0.113.7', 'sentry-xdp unban --all']);

  const list = program
    .command('list')
    .description('every ban in force: remaining time, origin, reason, the probe that caused it, packets dropped')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, c: Command) => {
      const entries = await bans.list(pathsOf(c), configOf(c), warn);
      if (o.json) return out(JSON.stringify({ version: JSON_FORMAT_VERSION, bans: entries }));
      if (!entries.length) return out('no bans in force');
      const w = Math.max(6, ...entries.map((e) => e.target.length));
      out(`${'TARGET'.padEnd(w)}  ORIGIN    EXPIRES IN   DROPS  REASON`);
      for (const e of entries) {
        const who = e.origin === 'fleet' && e.gateway ? `from ${e.gateway}` : e.by && e.origin !== 'auto' ? `by ${e.by}` : '';
        const reason = [e.probe, e.reason && e.reason !== e.probe && !e.reason.startsWith('scan: ') ? e.reason : '', who ? `(${who})` : '']
          .filter(Boolean)
          .join(' ');
        out(`${e.target.padEnd(w)}  ${e.origin.padEnd(8)}  ${remaining(e).padEnd(11)}  ${String(e.drops).padStart(5)}  ${reason}`);
      }
    });
  examples(list, ['sentry-xdp list', "sentry-xdp list --json | jq -r '.bans[] | select(.origin == \"auto\") | .target'"]);

  const history = program
    .command('history')
    .description('alerts, bans and unbans from the history store (Redis, or the local journal)')
    .argument('[addr]', 'only this source')
    .option('--since <duration>', 'only this recent, e.g. 1h, 7d')
    .option('--limit <n>', 'only the last N events', (v) => {
      if (!/^\d+$/.test(v)) throw new SentryError('USAGE', `--limit: "${v}" is not a number`, 'e.g. --limit 100');
      return Number(v);
    })
    .option('--json', 'print JSON lines (NDJSON, one event a line)')
    .action(async (addr: string | undefined, o: { since?: string; limit?: number; json?: boolean }, c: Command) => {
      const r = await bans.history(pathsOf(c), configOf(c), { source: addr, since: o.since, limit: o.limit }, warn);
      for (const e of r.events) out(o.json ? JSON.stringify(historyJson(e)) : eventLine(e));
      if (!o.json && !r.events.length) out(`no events${addr ? ` for ${addr}` : ''}${o.since ? ` in the last ${o.since}` : ''} (${r.store})`);
    });
  examples(history, ['sentry-xdp history --since 1h', 'sentry-xdp history 198.18.0.2 --limit 20', "sentry-xdp history --since 1d --json | jq -c 'select(.event == \"ban\")'"]);

  const top = program
    .command('top')
    .description('live view: drop rate, recent alerts, worst offenders (on a terminal); --once prints one report')
    .option('--since <duration>', 'the period for offenders, ports and kinds', '1h')
    .option('--once', 'print one report and exit (the default when not on a terminal)')
    .option('--interval <seconds>', 'refresh every N seconds', '2')
    .option('--json', 'print JSON (implies --once)')
    .action(async (o: { since: string; once?: boolean; interval: string; json?: boolean }, c: Command) => {
      const report = async () => {
        const r = await bans.history(pathsOf(c), configOf(c), { since: o.since }, warn);
        return { report: topReport(r.events, r.since ?? 0), events: r.events };
      };
      if (o.json || o.once || !process.stdout.isTTY) {
        const { report: rep } = await report();
        if (o.json) return out(JSON.stringify(topJson(rep)));
        for (const l of topText(rep, Date.now())) out(l);
        return;
      }
      const every = Math.max(0.5, Number(o.interval) || 2) * 1000;
      let prev: { t: number; passed: number; dropped: number } | undefined;
      let stop = false;
      process.once('SIGINT', () => (stop = true));
      if (process.stdin.isTTY) {
        process.stdin.setRawMode(true);
        process.stdin.on('data', (b) => {
          if (b[0] === 0x71 || b[0] === 0x03) stop = true; // q, Ctrl-C
        });
      }
      while (!stop) {
        const s = cmd.status(pathsOf(c));
        const { report: rep, events } = await report();
        const now = Date.now();
        const passed = Number(s.counters.passed ?? 0);
        const dropped = Number(s.counters.dropped ?? 0);
        const rate = prev ? ((dropped - prev.dropped) * 1000) / (now - prev.t) : 0;
        const prate = prev ? ((passed - prev.passed) * 1000) / (now - prev.t) : 0;
        prev = { t: now, passed, dropped };
        const lines = [
          `sentry-xdp top  ${new Date(now).toISOString()}  daemon ${s.daemonPid ? `pid ${s.daemonPid}` : 'not running'}  interfaces ${s.interfaces.map((i) => `${i.name}(${i.mode})`).join(' ') || '-'}`,
          `drop rate ${rate.toFixed(0)} pkt/s  pass rate ${prate.toFixed(0)} pkt/s  dropped ${dropped}  alerts ${s.counters.alerts ?? 0}  bans in force ${s.bansInForce}  ring-buffer lost ${s.counters.rbLost ?? 0}`,
          '',
          'recent alerts',
          ...(events.filter((e) => e.op === 'alert').slice(-8).map((e) => `  ${eventLine(e)}`) || []),
          '',
          ...topText(rep, now),
          '',
          'q quits',
        ];
        process.stdout.write(`\x1b[H\x1b[2J${lines.map(printable).join('\n')}\n`);
        for (let waited = 0; waited < every && !stop; waited += 100) await new Promise((r) => setTimeout(r, 100));
      }
      if (process.stdin.isTTY) process.stdin.setRawMode(false);
      process.stdin.pause();
    });
  examples(top, ['sentry-xdp top', 'sentry-xdp top --once --since 1d', 'sentry-xdp top --json | jq .offenders']);

  const reload = program
    .command('reload')
    .description('make the running daemon re-read its config (SIGHUP); a config that fails validation is refused and the running one stays')
    .action((_o: object, c: Command) => {
      const pid = cmd.reload(pathsOf(c));
      out(`sent SIGHUP to the daemon (pid ${pid}); its log says whether the new config was taken`);
    });
  examples(reload, ['sentry-xdp config check && sentry-xdp reload']);

  const configCmd = program.command('config').description('check a config file, print the defaults, or import a portsentry.conf');
  examples(configCmd, ['sentry-xdp config check /etc/sentry-xdp/sentry.yaml', 'sentry-xdp config defaults', 'sentry-xdp config import-portsentry /etc/portsentry/portsentry.conf -o sentry.yaml']);
  const check = configCmd
    .command('check')
    .description('validate a config file (default /etc/sentry-xdp/sentry.yaml) as the daemon would')
    .argument('[file]', 'the config file')
    .action((file: string | undefined, _o: unknown, c: Command) => {
      const r = cmd.configCheck(file ?? configOf(c));
      for (const w of r.warnings) warn(`warning: ${w}`);
      out(`${r.source}: ok${r.warnings.length ? ` (${r.warnings.length} warning(s) above)` : ''}`);
    });
  examples(check, ['sentry-xdp config check', 'sentry-xdp config check ./sentry.yaml', 'sentry-xdp -c ./sentry.yaml config check']);
  const defaults = configCmd
    .command('defaults')
    .description('print the whole config with every key at its default and a comment saying what it means')
    .action(() => {
      process.stdout.write(defaultsYaml());
    });
  examples(defaults, ['sentry-xdp config defaults > /etc/sentry-xdp/sentry.yaml', 'sentry-xdp config defaults | grep -A2 "^escalation:"']);
  const importCmd = configCmd
    .command('import-portsentry')
    .description('write an equivalent sentry.yaml from a portsentry.conf; what has no equivalent is listed')
    .argument('<portsentry.conf>', "PortSentry's config, e.g. /etc/portsentry/portsentry.conf")
    .option('--ignore <file>', "PortSentry's ignore file (IGNORE_FILE), imported as the allow list")
    .option('--modes <list>', 'PortSentry run modes to carry over: tcp,udp,stcp,sudp,atcp,audp (default: what the file configures)')
    .option('-o, --output <file>', 'write the YAML here instead of stdout (refuses to overwrite)')
    .action((file: string, o: { ignore?: string; modes?: string; output?: string }) => {
      const r = cmd.importPortsentryFile(file, o.ignore, o.modes, o.output);
      if (!o.output) process.stdout.write(r.yaml);
      for (const n of r.notes) process.stderr.write(`${n.file}${n.line ? `:${n.line}` : ''}: ${n.message}\n`);
      if (o.output) out(`wrote ${o.output}; ${r.notes.length} note(s) above; check it with \`sentry-xdp config check ${o.output}\``);
    });
  examples(importCmd, [
    'sentry-xdp config import-portsentry /etc/portsentry/portsentry.conf --ignore /etc/portsentry/portsentry.ignore --modes tcp,udp -o /etc/sentry-xdp/sentry.yaml',
  ]);

  const allowCmd = program.command('allow').description("the allow list (PortSentry's portsentry.ignore): never counted, never banned");
  examples(allowCmd, ['sentry-xdp allow add 10.20.0.0/16', 'sentry-xdp allow rm 10.20.0.0/16', 'sentry-xdp allow list']);
  for (const action of ['add', 'rm'] as const) {
    const verb = allowCmd
      .command(action)
      .description(action === 'add' ? 'add addresses or CIDRs to the allow list' : 'remove them from the allow list')
      .argument('<cidr...>', 'addresses or CIDRs')
      .action((targets: string[], _o: object, c: Command) => {
        bans.allow(action, targets, pathsOf(c), configOf(c));
        for (const t of targets) out(`${action === 'add' ? 'allowed' : 'no longer allowed'}: ${t}`);
      });
    examples(verb, [`sentry-xdp allow ${action} 10.20.0.0/16 2001:db8:20::/48`]);
  }
  const allowList = allowCmd
    .command('list')
    .description('the allow list and the never-ban list, as the kernel holds them')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }, c: Command) => {
      const entries = bans.allow('list', [], pathsOf(c), configOf(c));
      if (o.json) return out(JSON.stringify({ version: JSON_FORMAT_VERSION, entries }));
      if (!entries.length) return out('the allow list is empty');
      const w = Math.max(4, ...entries.map((e) => e.cidr.length));
      for (const e of entries) out(`${e.cidr.padEnd(w)}  ${e.kind.padEnd(9)}  ${e.source}`);
    });
  examples(allowList, ['sentry-xdp allow list', "sentry-xdp allow list --json | jq -r '.entries[] | select(.kind == \"allow\") | .cidr'"]);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  // the state files (journal, alerts, allow list) are 0640 and their directory 0750 whatever umask we were started
  // with (systemd's UMask=0077, a shell's 000); the run dir and hosts.deny set their own modes (src/adapters/file-modes.ts)
  process.umask(0o027);
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0; // a verb may set it (status: 1 degraded, 3 not running)
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its one line; --help and --version exit 0
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof SentryError) {
      process.stderr.write(`sentry-xdp: ${printable(`${e.message}${e.hint ? `; ${e.hint}` : ''}`)}\n`);
      return exitCodeFor(e.code);
    }
    const err = e as Error;
    process.stderr.write(`sentry-xdp: unexpected error: ${printable(String(err.message))}; please report it with SENTRY_XDP_DEBUG=1 output\n`);
    if (process.env.SENTRY_XDP_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

// exit once stdout has drained: a large `list --json` into a pipe must not be cut short
main(process.argv).then((code) => process.stdout.write('', () => process.exit(code)));
