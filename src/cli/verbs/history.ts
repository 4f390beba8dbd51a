/** `history` and `top`: what happened, from the history store (Redis or the local journal). */
import { eventLine, topReport, topText, type TopReport } from '../../core/history-report.js';
import { historyJson, topJson } from '../../core/json-format.js';
import { printable } from '../../core/text.js';
import { SentryError } from '../../errors.js';
import * as bans from '../../daemon/ban-commands.js';
import * as cmd from '../../daemon/commands.js';
import { out, warn } from '../io.js';
import { defineVerb, type VerbCall } from '../verb.js';

function parseLimit(v: string): number {
  if (!/^\d+$/.test(v)) throw new SentryError('USAGE', `--limit: "${v}" is not a number`, 'e.g. --limit 100');
  return Number(v);
}

export const history = defineVerb<{ since?: string; limit?: number; json?: boolean }>({
  name: 'history',
  summary: 'alerts, bans and unbans from the history store (Redis, or the local journal)',
  arguments: [{ name: '[addr]', description: 'only this source' }],
  options: [
    { flags: '--since <duration>', description: 'only this recent, e.g. 1h, 7d' },
    { flags: '--limit <n>', description: 'only the last N events', parse: parseLimit },
    { flags: '--json', description: 'print JSON lines (NDJSON, one event a line)' },
  ],
  examples: [
    'sentry-xdp history --since 1h',
    'sentry-xdp history 198.18.0.2 --limit 20',
    'sentry-xdp history --since 1d --json | jq -c \'select(.event == "ban")\'',
  ],
  run: async ({ operands: [addr], opts, paths, config }) => {
    const r = await bans.history(paths(), config(), { source: addr, since: opts.since, limit: opts.limit }, warn);
    for (const e of r.events) out(opts.json ? JSON.stringify(historyJson(e)) : eventLine(e));
    if (!opts.json && !r.events.length) out(`no events${addr ? ` for ${addr}` : ''}${opts.since ? ` in the last ${opts.since}` : ''} (${r.store})`);
  },
});

interface TopOpts {
  since: string;
  once?: boolean;
  interval: string;
  json?: boolean;
}

/** As the history store gives them (the type lives with the store). */
type HistoryEvent = Awaited<ReturnType<typeof bans.history>>['events'][number];

type Rates = { t: number; passed: number; dropped: number };

async function topData(call: VerbCall<TopOpts>): Promise<{ report: TopReport; events: HistoryEvent[] }> {
  const r = await bans.history(call.paths(), call.config(), { since: call.opts.since }, warn);
  return { report: topReport(r.events, r.since ?? 0), events: r.events };
}

/** One screen of the live view; `prev` is the last screen's counters, for the rates. */
function topScreen(s: cmd.Status, report: TopReport, events: HistoryEvent[], now: number, prev: Rates | undefined): string[] {
  const passed = Number(s.counters.passed ?? 0);
  const dropped = Number(s.counters.dropped ?? 0);
  const rate = prev ? ((dropped - prev.dropped) * 1000) / (now - prev.t) : 0;
  const prate = prev ? ((passed - prev.passed) * 1000) / (now - prev.t) : 0;
  return [
    `sentry-xdp top  ${new Date(now).toISOString()}  daemon ${s.daemonPid ? `pid ${s.daemonPid}` : 'not running'}  interfaces ${s.interfaces.map((i) => `${i.name}(${i.mode})`).join(' ') || '-'}`,
    `drop rate ${rate.toFixed(0)} pkt/s  pass rate ${prate.toFixed(0)} pkt/s  dropped ${dropped}  alerts ${s.counters.alerts ?? 0}  bans in force ${s.bansInForce}  ring-buffer lost ${s.counters.rbLost ?? 0}`,
    '',
    'recent alerts',
    ...events
      .filter((e) => e.op === 'alert')
      .slice(-8)
      .map((e) => `  ${eventLine(e)}`),
    '',
    ...topText(report, now),
    '',
    'q quits',
  ];
}

/** Redraws the screen every --interval until q, Ctrl-C or SIGINT. */
async function topLive(call: VerbCall<TopOpts>): Promise<void> {
  const every = Math.max(0.5, Number(call.opts.interval) || 2) * 1000;
  let prev: Rates | undefined;
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  if (process.stdin.isTTY) {
    process.stdin.setRawMode(true);
    process.stdin.on('data', (b) => {
      if (b[0] === 0x71 || b[0] === 0x03) stop = true; // q, Ctrl-C
    });
  }
  while (!stop) {
    const s = cmd.status(call.paths());
    const { report, events } = await topData(call);
    const now = Date.now();
    const lines = topScreen(s, report, events, now, prev);
    prev = { t: now, passed: Number(s.counters.passed ?? 0), dropped: Number(s.counters.dropped ?? 0) };
    process.stdout.write(`\x1b[H\x1b[2J${lines.map(printable).join('\n')}\n`);
    for (let waited = 0; waited < every && !stop; waited += 100) await new Promise((r) => setTimeout(r, 100));
  }
  if (process.stdin.isTTY) process.stdin.setRawMode(false);
  process.stdin.pause();
}

export const top = defineVerb<TopOpts>({
  name: 'top',
  summary: 'live view: drop rate, recent alerts, worst offenders (on a terminal); --once prints one report',
  options: [
    { flags: '--since <duration>', description: 'the period for offenders, ports and kinds', default: '1h' },
    { flags: '--once', description: 'print one report and exit (the default when not on a terminal)' },
    { flags: '--interval <seconds>', description: 'refresh every N seconds', default: '2' },
    { flags: '--json', description: 'print JSON (implies --once)' },
  ],
  examples: ['sentry-xdp top', 'sentry-xdp top --once --since 1d', 'sentry-xdp top --json | jq .offenders'],
  run: async (call) => {
    if (!call.opts.json && !call.opts.once && process.stdout.isTTY) return topLive(call);
    const { report } = await topData(call);
    if (call.opts.json) return out(JSON.stringify(topJson(report)));
    for (const l of topText(report, Date.now())) out(l);
  },
});
