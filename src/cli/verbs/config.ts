/** `config check`, `config defaults` and `config import-portsentry`. */
import { defaultsYaml } from '../../core/config-doc.js';
import * as cmd from '../../daemon/commands.js';
import { out, warn } from '../io.js';
import { defineVerb } from '../verb.js';

const check = defineVerb({
  name: 'check',
  summary: 'validate a config file (default /etc/sentry-xdp/sentry.yaml) as the daemon would',
  arguments: [{ name: '[file]', description: 'the config file' }],
  examples: ['sentry-xdp config check', 'sentry-xdp config check ./sentry.yaml', 'sentry-xdp -c ./sentry.yaml config check'],
  run: ({ operands: [file], config }) => {
    const r = cmd.configCheck(file ?? config());
    for (const w of r.warnings) warn(`warning: ${w}`);
    out(`${r.source}: ok${r.warnings.length ? ` (${r.warnings.length} warning(s) above)` : ''}`);
  },
});

const defaults = defineVerb({
  name: 'defaults',
  summary: 'print the whole config with every key at its default and a comment saying what it means',
  examples: ['sentry-xdp config defaults > /etc/sentry-xdp/sentry.yaml', 'sentry-xdp config defaults | grep -A2 "^escalation:"'],
  run: () => {
    process.stdout.write(defaultsYaml());
  },
});

const importPortsentry = defineVerb<{ ignore?: string; modes?: string; output?: string }>({
  name: 'import-portsentry',
  summary: 'write an equivalent sentry.yaml from a portsentry.conf; what has no equivalent is listed',
  arguments: [{ name: '<portsentry.conf>', description: "PortSentry's config, e.g. /etc/portsentry/portsentry.conf" }],
  options: [
    { flags: '--ignore <file>', description: "PortSentry's ignore file (IGNORE_FILE), imported as the allow list" },
    { flags: '--modes <list>', description: 'PortSentry run modes to carry over: tcp,udp,stcp,sudp,atcp,audp (default: what the file configures)' },
    { flags: '-o, --output <file>', description: 'write the YAML here instead of stdout (refuses to overwrite)' },
  ],
  examples: [
    'sentry-xdp config import-portsentry /etc/portsentry/portsentry.conf --ignore /etc/portsentry/portsentry.ignore --modes tcp,udp -o /etc/sentry-xdp/sentry.yaml',
  ],
  run: ({ operands: [file], opts }) => {
    const r = cmd.importPortsentryFile(file!, opts.ignore, opts.modes, opts.output);
    if (!opts.output) process.stdout.write(r.yaml);
    for (const n of r.notes) process.stderr.write(`${n.file}${n.line ? `:${n.line}` : ''}: ${n.message}\n`);
    if (opts.output) out(`wrote ${opts.output}; ${r.notes.length} note(s) above; check it with \`sentry-xdp config check ${opts.output}\``);
  },
});

export const config = defineVerb({
  name: 'config',
  summary: 'check a config file, print the defaults, or import a portsentry.conf',
  examples: [
    'sentry-xdp config check /etc/sentry-xdp/sentry.yaml',
    'sentry-xdp config defaults',
    'sentry-xdp config import-portsentry /etc/portsentry/portsentry.conf -o sentry.yaml',
  ],
  verbs: [check, defaults, importPortsentry],
});
