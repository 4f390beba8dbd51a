/**
 * The commander program, built from the verbs' descriptions (src/cli/verbs/). No side effects on import:
 * scripts/cli-program.ts builds the man page and the bash completion from it.
 */
import { Argument, Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../adapters/kernel.js';
import { configFor } from '../adapters/config-file.js';
import { resolvePaths } from '../adapters/paths.js';
import { RunDir } from '../adapters/run-dir.js';
import { printable } from '../core/text.js';
import { warn } from './io.js';
import type { OptionSpec, Verb, VerbCall } from './verb.js';
import { VERBS } from './verbs/index.js';

const version = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

interface GlobalOpts {
  pinRoot?: string;
  runDir?: string;
  stateDir?: string;
  config?: string;
}

const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  {
    flags: '-c, --config <file>',
    description: "YAML config (default: $SENTRY_XDP_CONFIG, else the running daemon's, else /etc/sentry-xdp/sentry.yaml if present, else built-in defaults)",
  },
  { flags: '--pin-root <dir>', description: 'bpffs directory for maps, program and links (env SENTRY_XDP_PIN_ROOT)' },
  { flags: '--run-dir <dir>', description: 'runtime directory for the pid file and port report (env SENTRY_XDP_RUN_DIR)' },
  { flags: '--state-dir <dir>', description: 'state directory for the ban journal and allow list (env SENTRY_XDP_STATE_DIR)' },
];

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

function optionOf(spec: OptionSpec): Option {
  const o = new Option(spec.flags, spec.description);
  if (spec.choices) o.choices(spec.choices);
  if (spec.default !== undefined) o.default(spec.default);
  if (spec.parse) o.argParser(spec.parse);
  return o;
}

/** "Examples:" after a verb's help. */
function examplesText(lines: readonly string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

/** What a handler sees of the command commander parsed. */
function callOf(c: Command): VerbCall<Record<string, unknown>> {
  const globals = c.optsWithGlobals<GlobalOpts>();
  const paths = () => resolvePaths(globals);
  return {
    operands: (c.processedArgs as unknown[]).flat().filter((a): a is string => typeof a === 'string'),
    opts: c.opts(),
    paths,
    config: () => configFor(globals.config, new RunDir(paths().runDir).daemonConfig(), warn),
    configFlag: globals.config,
  };
}

/** Adds `verb` (and its sub-verbs) under `parent`. */
function addVerb(parent: Command, verb: Verb): void {
  const c = parent.command(verb.name).description(verb.summary);
  for (const a of verb.arguments ?? []) c.addArgument(new Argument(a.name, a.description));
  for (const o of verb.options ?? []) c.addOption(optionOf(o));
  const run = verb.run;
  if (run) c.action(async (...args: unknown[]) => run(callOf(args[args.length - 1] as Command)));
  c.addHelpText('after', examplesText(verb.examples));
  for (const sub of verb.verbs ?? []) addVerb(c, sub);
}

/** The program itself: global options, version flags, help epilogue, and one-line errors. */
function rootProgram(): Command {
  const program = new Command('sentry-xdp')
    .description('XDP port-scan detector and blocker (PortSentry, rebuilt)')
    .version(version, '-V, --version', 'print the version (-v too)')
    .addOption(new Option('-v').hideHelp()); // what many type for the version; sentry-xdp has no verbose mode
  for (const o of GLOBAL_OPTIONS) program.addOption(optionOf(o));
  program
    .configureHelp({ showGlobalOptions: true })
    .addHelpText('after', EXIT_CODES)
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.split('\n').map(printable).join('\n')), // it echoes argv
      // one line, as every other error: "sentry-xdp: unknown option '--jsn' (did you mean --json?); see --help"
      outputError: (s, write) => {
        const line = s
          .trim()
          .replace(/^error: /, '')
          .replace(/\s*\n\(Did you mean (.*)\?\)/, ' (did you mean $1?)')
          .replace(/\s*\n\s*/g, ' ')
          .replace(/\.$/, '');
        write(`sentry-xdp: ${line}; see --help\n`);
      },
    });
  program.on('option:v', () => {
    process.stdout.write(`${version}\n`);
    throw new CommanderError(0, 'commander.version', version);
  });
  return program;
}

export function buildProgram(verbs: readonly Verb[] = VERBS): Command {
  const program = rootProgram();
  for (const v of verbs) addVerb(program, v);
  return program;
}
