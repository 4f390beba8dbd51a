/** `ban`, `unban` and `list`: the ban table by hand, with or without a daemon. */
import { formatDuration } from '../../core/ttl.js';
import { JSON_FORMAT_VERSION } from '../../core/json-format.js';
import { SentryError } from '../../errors.js';
import * as bans from '../../daemon/ban-commands.js';
import { out, progressBar, warn } from '../io.js';
import { defineVerb } from '../verb.js';

export const ban = defineVerb<{ ttl?: string; reason?: string; file?: string }>({
  name: 'ban',
  summary: 'ban addresses or CIDRs (IPv4 and IPv6) in the kernel table and nftables; works with or without a daemon',
  arguments: [{ name: '[target...]', description: 'addresses or CIDRs, e.g. 203.0.113.7 2001:db8::/48' }],
  options: [
    { flags: '--ttl <duration>', description: 'ban length: 90s, 10m, 1h30m, 7d, or permanent (default: the TTL rules, else ban_ttl)' },
    { flags: '--reason <text>', description: 'why, shown by `list`' },
    { flags: '--file <path>', description: 'one address or CIDR per line (# comments); - for stdin; all or nothing' },
  ],
  examples: [
    'sentry-xdp ban 203.0.113.7 2001:db8:bad::/48 --ttl 10m --reason "abuse report #4711"',
    'sentry-xdp ban --file blocklist.txt --ttl 7d',
    'curl -s https://example.net/drop.txt | sentry-xdp ban --file - --ttl permanent',
  ],
  run: async ({ operands, opts, paths, config }) => {
    const bar = progressBar();
    try {
      const r = await bans.ban({
        targets: operands,
        file: opts.file,
        ttl: opts.ttl,
        reason: opts.reason,
        paths: paths(),
        config: config(),
        warn,
        progress: bar.update,
      });
      bar.stop();
      const ttls = [...r.ttls].map(formatDuration).join(', ');
      if (r.targets.length) for (const t of r.targets) out(`banned ${t} (${ttls})`);
      else out(`banned ${r.count} addresses (${ttls})`);
    } finally {
      bar.stop();
    }
  },
});

export const unban = defineVerb<{ all?: boolean }>({
  name: 'unban',
  summary: 'lift bans',
  arguments: [{ name: '[target...]', description: 'addresses or CIDRs' }],
  options: [{ flags: '--all', description: 'lift every ban' }],
  examples: ['sentry-xdp unban 203.0.113.7', 'sentry-xdp unban --all'],
  run: async ({ operands, opts, paths, config }) => {
    const r = await bans.unban(operands, Boolean(opts.all), paths(), config(), warn);
    if (opts.all) out(`unbanned ${r.removed.length} ban(s)`);
    else for (const t of r.removed) out(`unbanned ${t}`);
    if (r.missing.length) throw new SentryError('NOT_BANNED', `not banned: ${r.missing.join(', ')}`, 'see `sentry-xdp list`');
  },
});

type ListEntry = Awaited<ReturnType<typeof bans.list>>[number];

function remaining(e: { remainingSeconds: number | null }): string {
  return e.remainingSeconds === null ? 'permanent' : formatDuration(e.remainingSeconds);
}

/** `list`'s table: one line a ban, the reason column saying what caused it and who made it. */
export function banTable(entries: readonly ListEntry[]): string[] {
  if (!entries.length) return ['no bans in force'];
  const w = Math.max(6, ...entries.map((e) => e.target.length));
  const lines = [`${'TARGET'.padEnd(w)}  ORIGIN    EXPIRES IN   DROPS  REASON`];
  for (const e of entries) {
    const who = e.origin === 'fleet' && e.gateway ? `from ${e.gateway}` : e.by && e.origin !== 'auto' ? `by ${e.by}` : '';
    const reason = [e.probe, e.reason && e.reason !== e.probe && !e.reason.startsWith('scan: ') ? e.reason : '', who ? `(${who})` : '']
      .filter(Boolean)
      .join(' ');
    lines.push(`${e.target.padEnd(w)}  ${e.origin.padEnd(8)}  ${remaining(e).padEnd(11)}  ${String(e.drops).padStart(5)}  ${reason}`);
  }
  return lines;
}

export const list = defineVerb<{ json?: boolean }>({
  name: 'list',
  summary: 'every ban in force: remaining time, origin, reason, the probe that caused it, packets dropped',
  options: [{ flags: '--json', description: 'print JSON' }],
  examples: ['sentry-xdp list', 'sentry-xdp list --json | jq -r \'.bans[] | select(.origin == "auto") | .target\''],
  run: async ({ opts, paths, config }) => {
    const entries = await bans.list(paths(), config(), warn);
    if (opts.json) return out(JSON.stringify({ version: JSON_FORMAT_VERSION, bans: entries }));
    for (const l of banTable(entries)) out(l);
  },
});
