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
import * as cmd from '../daemon/commands.js';
import { makeReporter } from '../daemon/daemon.js';

const version = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface GlobalOpts {
  pinRoot?: string;
  runDir?: string;
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function pathsOf(c: Command) {
  return resolvePaths(c.optsWithGlobals<GlobalOpts>());
}

function printStatus(s: cmd.Status): void {
  if (!s.loaded) {
    out(`sentry-xdp is not loaded (nothing pinned in ${s.pinRoot}); start it with \`sentry-xdp attach IFACE\``);
    return;
  }
  out(`pin root: ${s.pinRoot}`);
  out(`daemon: ${s.daemonPid ? `running (pid ${s.daemonPid})` : 'not running (bans are still enforced by the kernel)'}`);
  out('interfaces:');
  if (!s.interfaces.length) out('  (none attached)');
  for (const i of s.interfaces) {
    out(`  ${i.name.padEnd(16)} ${i.stale ? 'gone (stale link)' : `ifindex ${i.ifindex}  ${i.mode} mode  program id ${i.progId}`}`);
  }
  if (s.watch) {
    out(`watched TCP ports (${s.watch.tcp.length}): ${formatPortList(s.watch.tcp) || '(none)'}`);
    out(`watched UDP ports (${s.watch.udp.length}): ${formatPortList(s.watch.udp) || '(none)'}`);
    for (const k of s.watch.skipped) out(`skipped ${k.proto.toUpperCase()} ${k.port}: ${k.reason}`);
  }
  const c = s.counters;
  const row = (label: string, v: string | number | undefined) => out(`  ${label.padEnd(22)} ${v ?? 0}`);
  out('counters:');
  row('packets seen', c.seen);
  row('passed', c.passed);
  row('dropped (banned)', c.dropped);
  row('probes', `syn ${c.probe_syn} fin ${c.probe_fin} null ${c.probe_null} xmas ${c.probe_xmas} unknown ${c.probe_unknown} udp ${c.probe_udp}`);
  row('alerts', c.alerts);
  row('bans added by kernel', c.bans_added);
  row('bans in force', s.bansInForce);
  row('ring-buffer lost', c.rb_lost);
  row('allow-list passes', c.allowed);
  row('unparsed / non-IP', `${c.unparsed} / ${c.non_ip}`);
  row('fragments passed', c.fragments);
  row('local UDP sockets', c.local_socket);
  row('ban table full', c.ban_table_full);
}

export function buildProgram(): Command {
  const program = new Command('sentry-xdp')
    .description('XDP port-scan detector and blocker (PortSentry, rebuilt)')
    .version(version)
    .option('--pin-root <dir>', 'bpffs directory for maps, program and links (env SENTRY_XDP_PIN_ROOT)')
    .option('--run-dir <dir>', 'runtime directory for the pid file and port report (env SENTRY_XDP_RUN_DIR)')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  program
    .command('attach')
    .description('load (or adopt) the XDP program, attach it, and run the daemon in the foreground')
    .argument('<iface...>', 'interfaces to attach to, e.g. eth0 eth1')
    .option('-c, --config <file>', 'YAML config (default /etc/sentry-xdp/sentry.yaml if present, else built-in defaults)')
    .addOption(new Option('--mode <mode>', 'XDP attach mode').choices(['auto', 'native', 'generic']).default('auto'))
    .option('--no-daemon', 'attach and return')
    .option('--detach-on-exit', 'detach from the interfaces when the daemon stops')
    .option('--json', 'print JSON lines instead of PortSentry-style lines')
    .action(async (ifaces: string[], o: { config?: string; mode: 'auto' | 'native' | 'generic'; daemon: boolean; detachOnExit?: boolean; json?: boolean }, c: Command) => {
      const ac = new AbortController();
      const stop = () => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await cmd.attach({
        ifaces,
        config: o.config,
        mode: o.mode,
        daemon: o.daemon,
        detachOnExit: Boolean(o.detachOnExit),
        paths: pathsOf(c),
        reporter: makeReporter(Boolean(o.json), out),
        signal: ac.signal,
      });
    });

  program
    .command('detach')
    .description('detach from interfaces; --all also removes the program, the maps and every ban')
    .argument('[iface...]', 'interfaces to detach from')
    .option('--all', 'detach everywhere and remove everything sentry-xdp pinned')
    .action((ifaces: string[], o: { all?: boolean }, c: Command) => {
      const gone = cmd.detach(ifaces, Boolean(o.all), pathsOf(c));
      if (o.all) out(`detached from ${gone.length ? gone.join(', ') : 'no interface'}; removed the program, maps and bans`);
      else out(`detached from ${gone.join(', ')}`);
    });

  program
    .command('status')
    .description('attached interfaces, watched ports and counters')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }, c: Command) => {
      const s = cmd.status(pathsOf(c));
      if (o.json) out(JSON.stringify(s, null, 2));
      else printStatus(s);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its one line; --help and --version exit 0
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof SentryError) {
      process.stderr.write(`sentry-xdp: ${e.message}${e.hint ? `; ${e.hint}` : ''}\n`);
      return exitCodeFor(e.code);
    }
    const err = e as Error;
    process.stderr.write(`sentry-xdp: unexpected error: ${err.message}; please report it with SENTRY_XDP_DEBUG=1 output\n`);
    if (process.env.SENTRY_XDP_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

main(process.argv).then((code) => process.exit(code));
