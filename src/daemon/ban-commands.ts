/**
 * `ban`, `unban`, `list` and `allow`: they write the kernel table, the journal
 * and nftables directly, through the same ban lifecycle as the daemon
 * (BanService), so they work whether or not a daemon runs.
 */
import { userInfo } from 'node:os';
import { ALLOW } from '../core/abi.js';
import { parseCidr, type Cidr } from '../core/addr.js';
import { readBanFile, TargetCollector, targetCount, v4Cidr } from './ban-file.js';
import type { Config } from '../core/config.js';
import { ttlFor } from '../core/policy.js';
import { hasUnsafeChars, printable } from '../core/text.js';
import { parseDuration } from '../core/ttl.js';
import { SentryError } from '../errors.js';
import { AllowFile } from '../adapters/allow-file.js';
import { loadConfig } from '../adapters/config-file.js';
import { JournalStore, type HistoryEvent, type HistoryStore } from '../adapters/history.js';
import { Nft } from '../adapters/nft.js';
import type { Paths } from '../adapters/paths.js';
import { requirePrivileges } from '../adapters/privileges.js';
import { AllowList } from './allow-list.js';
import { BanService, checkProtected, type BanRequest, type ListEntry } from './bans.js';
import { currentProtected, gatewayName, openHistory, syncLists, ttlRules } from './context.js';
import { Gateway } from './gateway.js';
import { NftSync } from './nft-sync.js';
import { configuredEffects } from './ban-effects.js';

export type Progress = (stage: string, done: number, total: number) => void;

interface Session {
  config: Config;
  gw: Gateway;
  bans: BanService;
  nft: NftSync | undefined;
  history: HistoryStore;
  close(): Promise<void>;
}

/** Opens (or loads and pins) the kernel side with the config in force. */
function openSession(paths: Paths, configPath: string | undefined, warn: (line: string) => void): Session {
  const { config } = loadConfig(configPath);
  const gw = Gateway.open(paths.pinRoot);
  const nft = config.nft.enabled ? new NftSync(new Nft({ table: config.nft.table }), warn, config.nft.table) : undefined;
  const history = openHistory(config, paths, warn);
  // an unban here does what the daemon does at expiry: the hosts.deny line out, UNBAN_CMD
  const { effects, idle } = configuredEffects(config, warn);
  return {
    config,
    gw,
    nft,
    history,
    bans: new BanService(gw, history, nft, gatewayName(config), effects),
    close: async () => {
      await idle();
      await history.close();
      gw.close();
    },
  };
}

const whoAmI = (): string => process.env.SUDO_USER ?? userInfo().username;

/**
 * --reason is stored, shared with the fleet and printed by `list` and
 * `history`: control characters (newlines, terminal escapes, bidi overrides)
 * are refused here, and escaped wherever stored text is printed.
 */
function checkReason(reason: string | undefined): void {
  if (reason === undefined) return;
  if (hasUnsafeChars(reason)) {
    throw new SentryError('USAGE', `--reason "${printable(reason)}" contains control characters`, 'write it on one line, without escape sequences');
  }
  if (reason.length > 500) throw new SentryError('USAGE', `--reason is ${reason.length} characters long`, 'keep it to at most 500');
}

export interface BanOptions {
  targets: string[];
  file?: string | undefined;
  ttl?: string | undefined;
  reason?: string | undefined;
  paths: Paths;
  config?: string | undefined;
  warn: (line: string) => void;
  progress?: Progress | undefined;
}

/** Bans applied per step: each step goes to history, the kernel and nft before the next. */
const STEP = 16384;

export async function ban(o: BanOptions): Promise<{ count: number; ttls: Set<number>; targets: string[] }> {
  // validate everything before touching anything
  const ttl = o.ttl === undefined ? undefined : parseDuration(o.ttl, '--ttl');
  checkReason(o.reason);
  const targets = new TargetCollector();
  for (const t of o.targets) targets.add(t);
  if (o.file !== undefined) await readBanFile(o.file, targets);
  if (!targets.size) throw new SentryError('USAGE', 'ban: name an address or CIDR, or use --file', 'e.g. `sentry-xdp ban 203.0.113.7 --ttl 10m`');
  requirePrivileges('ban');
  const list = targets.done();
  const total = targetCount(list);
  const s = openSession(o.paths, o.config, o.warn);
  // Ctrl-C (or a stop) ends the current step, so that history, the kernel and nft agree on what was banned
  let stopped: string | undefined;
  const stop = (sig: string) => (stopped = sig);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    checkProtected(list.others, currentProtected(s.config, o.paths), list.v4);
    const rules = ttlRules(s.config);
    const by = whoAmI();
    const ttls = new Set<number>();
    const request = (target: Cidr): BanRequest => {
      const r: BanRequest = {
        target,
        ttl: ttl ?? ttlFor(target, rules, s.config.ban_ttl),
        reason: o.reason ?? '',
        origin: o.file !== undefined ? 'imported' : 'manual',
        by,
      };
      ttls.add(r.ttl);
      return r;
    };
    let done = 0;
    for (let i = 0; i < total && !stopped; i += STEP) {
      const step: BanRequest[] = [];
      for (let j = i; j < Math.min(i + STEP, total); j++) step.push(request(j < list.v4.length ? v4Cidr(list.v4[j]!) : list.others[j - list.v4.length]!));
      await s.bans.ban(step);
      done += step.length;
      o.progress?.('bans', done, total);
    }
    if (stopped) {
      throw new SentryError(
        'INTERRUPTED',
        `interrupted (${stopped}): banned ${done} of ${total}; history, the kernel table and nftables agree on those`,
        'run the same command again to ban the rest',
      );
    }
    const few = total <= 10 ? [...Array.from(list.v4, (n) => v4Cidr(n).text), ...list.others.map((c) => c.text)] : [];
    return { count: total, ttls, targets: few };
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await s.close();
  }
}

export async function unban(
  targets: string[],
  all: boolean,
  paths: Paths,
  config: string | undefined,
  warn: (line: string) => void,
): Promise<{ removed: string[]; missing: string[] }> {
  const cidrs = targets.map((t) => parseCidr(t));
  if (!all && !cidrs.length) throw new SentryError('USAGE', 'unban: name an address or CIDR, or use --all', 'e.g. `sentry-xdp unban 203.0.113.7`');
  requirePrivileges('unban');
  const s = openSession(paths, config, warn);
  try {
    if (all) return { removed: await s.bans.unbanAll(whoAmI()), missing: [] };
    const removed = await s.bans.unban(cidrs, whoAmI());
    const gone = new Set(removed);
    return { removed, missing: cidrs.map((c) => c.text).filter((t) => !gone.has(t)) };
  } finally {
    await s.close();
  }
}

export async function list(paths: Paths, config: string | undefined, warn: (line: string) => void): Promise<ListEntry[]> {
  requirePrivileges('list');
  const s = openSession(paths, config, warn);
  try {
    return await s.bans.list();
  } finally {
    await s.close();
  }
}

export interface AllowEntry {
  cidr: string;
  kind: 'allow' | 'never-ban';
  source: string;
}

export function allow(action: 'add' | 'rm' | 'list', targets: string[], paths: Paths, configPath: string | undefined): AllowEntry[] {
  const cidrs = targets.map((t) => parseCidr(t));
  if (action !== 'list' && !cidrs.length) throw new SentryError('USAGE', `allow ${action}: name an address or CIDR`, 'e.g. `sentry-xdp allow add 10.0.0.0/8`');
  requirePrivileges('allow');
  const { config } = loadConfig(configPath);
  const file = new AllowFile(paths.stateDir);
  const have = file.read();
  if (action === 'add') {
    file.write([...new Set([...have, ...cidrs.map((c) => c.text)])]);
  } else if (action === 'rm') {
    for (const c of cidrs) {
      if (config.allow.includes(c.text)) {
        throw new SentryError('USAGE', `${c.text} is on the config file's allow list`, 'remove it from `allow:` in the config file');
      }
      if (!have.includes(c.text)) throw new SentryError('USAGE', `${c.text} is not on the allow list`, 'see `sentry-xdp allow list`');
    }
    const drop = new Set(cidrs.map((c) => c.text));
    file.write(have.filter((h) => !drop.has(h)));
  }
  const gw = Gateway.open(paths.pinRoot);
  try {
    syncLists(gw, config, paths);
    const fromFile = new Set(file.read());
    const reasons = new Map(currentProtected(config, paths).map((p) => [p.net.text, p.why]));
    return new AllowList(gw.obj).entries().map((e) => ({
      cidr: e.net.text,
      kind: e.value === ALLOW ? 'allow' : 'never-ban',
      source: e.value === ALLOW ? (fromFile.has(e.net.text) ? '`allow add`' : 'config file') : (reasons.get(e.net.text) ?? 'never-ban list'),
    }));
  } finally {
    gw.close();
  }
}

/** Events from the history store (Redis or the journal), oldest first. */
export async function history(
  paths: Paths,
  configPath: string | undefined,
  q: { source?: string | undefined; since?: string | undefined; limit?: number | undefined },
  warn: (line: string) => void,
): Promise<{ events: HistoryEvent[]; since: number | undefined; store: string }> {
  const source = q.source === undefined ? undefined : parseCidr(q.source).text;
  const since = q.since === undefined ? undefined : Date.now() - parseDuration(q.since, '--since', false) * 1000;
  requirePrivileges('history');
  const { config } = loadConfig(configPath);
  const store = openHistory(config, paths, warn);
  try {
    const events = await store.query({ source, since, limit: q.limit });
    if (store instanceof JournalStore) for (const p of store.problems) warn(`journal: ${p}`);
    return { events, since, store: store.kind };
  } finally {
    await store.close();
  }
}
