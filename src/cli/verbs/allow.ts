/** `allow add|rm|list`: the allow list (PortSentry's portsentry.ignore). */
import { JSON_FORMAT_VERSION } from '../../core/json-format.js';
import * as bans from '../../daemon/ban-commands.js';
import { out } from '../io.js';
import { defineVerb, type Verb } from '../verb.js';

/** `allow add` and `allow rm`: the same shape, opposite effects. */
function change(action: 'add' | 'rm'): Verb {
  return defineVerb({
    name: action,
    summary: action === 'add' ? 'add addresses or CIDRs to the allow list' : 'remove them from the allow list',
    arguments: [{ name: '<cidr...>', description: 'addresses or CIDRs' }],
    examples: [`sentry-xdp allow ${action} 10.20.0.0/16 2001:db8:20::/48`],
    run: ({ operands, paths, config }) => {
      bans.allow(action, operands, paths(), config());
      for (const t of operands) out(`${action === 'add' ? 'allowed' : 'no longer allowed'}: ${t}`);
    },
  });
}

export function allowTable(entries: readonly bans.AllowEntry[]): string[] {
  if (!entries.length) return ['the allow list is empty'];
  const w = Math.max(4, ...entries.map((e) => e.cidr.length));
  return entries.map((e) => `${e.cidr.padEnd(w)}  ${e.kind.padEnd(9)}  ${e.source}`);
}

const list = defineVerb<{ json?: boolean }>({
  name: 'list',
  summary: 'the allow list and the never-ban list, as the kernel holds them',
  options: [{ flags: '--json', description: 'print JSON' }],
  examples: ['sentry-xdp allow list', 'sentry-xdp allow list --json | jq -r \'.entries[] | select(.kind == "allow") | .cidr\''],
  run: ({ opts, paths, config }) => {
    const entries = bans.allow('list', [], paths(), config());
    if (opts.json) return out(JSON.stringify({ version: JSON_FORMAT_VERSION, entries }));
    for (const l of allowTable(entries)) out(l);
  },
});

export const allow = defineVerb({
  name: 'allow',
  summary: "the allow list (PortSentry's portsentry.ignore): never counted, never banned",
  examples: ['sentry-xdp allow add 10.20.0.0/16', 'sentry-xdp allow rm 10.20.0.0/16', 'sentry-xdp allow list'],
  verbs: [change('add'), change('rm'), list],
});
