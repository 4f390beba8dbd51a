import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import { SentryError } from '../errors.js';
import { parseCidr } from './addr.js';
import { MapSize } from './abi.js';
import { MAX_SERVICE_PORTS, parseService, servicePorts, serviceWarnings } from './destinations.js';
import { planHook } from './hook-command.js';
import { AWARE_TCP_PORTS, AWARE_UDP_PORTS, ephemeralWarnings, parsePortList } from './ports.js';
import { checkDuration, parseDuration, type DurationRange } from './ttl.js';

const portList = (where: string) =>
  z.union([z.string(), z.array(z.union([z.number().int(), z.string()]))]).transform((v, ctx) => {
    try {
      return parsePortList(v, where);
    } catch (e) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message.replace(`${where}: `, '') });
      return z.NEVER;
    }
  });

/**
 * A duration: text like "10m", or a whole number of seconds. Both forms get
 * the same range (at least 1s, at most 10 years unless `range` says less), so
 * `scan_window: 0` cannot turn detection off and `ban_ttl: 100000000d` cannot
 * overflow the kernel's expiry at start-up.
 */
const duration = (where: string, allowPermanent: boolean, range: DurationRange = {}) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      return typeof v === 'number' ? checkDuration(v, where, allowPermanent, range) : parseDuration(v, where, allowPermanent, range);
    } catch (e) {
      const err = e as SentryError;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${err.message.replace(`${where}: `, '')} (${err.hint ?? ''})` });
      return z.NEVER;
    }
  });

const cidr = (where: string) =>
  z.string().transform((v, ctx) => {
    try {
      return parseCidr(v).text;
    } catch (e) {
      const err = e as SentryError;
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${err.message} (${err.hint ?? where})` });
      return z.NEVER;
    }
  });

const service = z.string().transform((v, ctx) => {
  try {
    return parseService(v).text;
  } catch (e) {
    const err = e as SentryError;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${err.message} (${err.hint ?? ''})` });
    return z.NEVER;
  }
});

/** A KILL_* template: refused here when it cannot be planned, not at the first ban. */
const hookTemplate = z.string().superRefine((t, ctx) => {
  if (t.trim() === '') return;
  try {
    planHook(t, { target: '192.0.2.1', port: 1, mode: 'tcp' });
  } catch (e) {
    const err = e as SentryError;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${err.message} (${err.hint ?? ''})` });
  }
});

/** Capacities of the kernel maps these settings fill (bpf/sentry_shared.h, bpf/sentry.bpf.c). */
const MAX_TTL_RULES = 4096;
const MAX_PROTECTED_NETWORKS = 8192; // sentry_protect_v4/v6 hold 16 384, this host's addresses too

/** The facility names syslog.conf uses, with their codes (glibc's <syslog.h>). */
export const FACILITIES: Readonly<Record<string, number>> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** A TCP or UDP port a service listens on (Redis, metrics). */
const listenPort = z.number().int().min(1).max(65535);

/** BLOCK_TCP / BLOCK_UDP: 0 log only, 1 block, 2 run the external command only. */
const blockMode = z.union([z.boolean(), z.literal(0), z.literal(1), z.literal(2)]).transform((v) => (v === true ? 1 : v === false ? 0 : v));

/** The config file schema. Every key is optional; defaults are PortSentry's. */
export const ConfigSchema = z
  .object({
    tcp_ports: portList('tcp_ports').default(AWARE_TCP_PORTS),
    udp_ports: portList('udp_ports').default(AWARE_UDP_PORTS),
    advanced: z
      .object({
        tcp: z.number().int().min(0).max(65536).default(0),
        udp: z.number().int().min(0).max(65536).default(0),
        exclude_tcp: portList('advanced.exclude_tcp').default('113,139'),
        exclude_udp: portList('advanced.exclude_udp').default('520,138,137,67'),
      })
      .strict()
      .default({}),
    scan_trigger: z.number().int().min(0).max(0xffffffff).default(0),
    /** Distinct hosts of protect.networks one source may reach (SYN, UDP or ping, any port) within scan_window before it is a sweep; 0 turns sweeps off. */
    sweep_trigger: z.number().int().min(0).max(256).default(16),
    /** At most a day: the kernel forgets a source's probes only when its window ends. */
    scan_window: duration('scan_window', false, { max: 86400 }).default('60s'),
    block_tcp: blockMode.default(1),
    block_udp: blockMode.default(1),
    ban_ttl: duration('ban_ttl', true).default('1h'),
    /** Per-CIDR ban lengths for automatic bans; the most specific match wins. */
    ttl_rules: z
      .array(z.object({ cidr: cidr('ttl_rules'), ttl: duration('ttl_rules.ttl', true) }).strict())
      .default([])
      .refine(
        (rules) => [4, 6].every((fam) => rules.filter((r) => typeof r?.cidr === 'string' && r.cidr.includes(':') === (fam === 6)).length <= MAX_TTL_RULES),
        {
          message: `more than ${MAX_TTL_RULES} rules of one address family (the kernel's TTL tries hold ${MAX_TTL_RULES} each)`,
        },
      ),
    /** Repeat offenders: the n-th ban within `lookback` lasts ttl * factor^(n-1), at most `max`. */
    escalation: z
      .object({
        enabled: z.boolean().default(true),
        factor: z.number().min(1).max(100).default(2),
        max: duration('escalation.max', true).default('7d'),
        lookback: duration('escalation.lookback', false).default('1d'),
      })
      .strict()
      .default({}),
    /**
     * The gateway model: what a probe may be addressed to. This host's own
     * addresses always; `networks` behind the gateway whose unused ports are
     * tripwires too; `services` there, which never are.
     */
    protect: z
      .object({
        networks: z.array(cidr('protect.networks')).max(MAX_PROTECTED_NETWORKS, `at most ${MAX_PROTECTED_NETWORKS} networks`).default([]),
        services: z
          .array(service)
          .default([])
          .refine((list) => servicePorts(list.filter((t) => typeof t === 'string').map(parseService)) <= MAX_SERVICE_PORTS, {
            message: `more than ${MAX_SERVICE_PORTS} service ports (a range counts one per port)`,
          }),
      })
      .strict()
      .default({}),
    /** PortSentry's ignore file: never counted, never banned. */
    allow: z.array(cidr('allow')).max(8192, 'at most 8192 entries (the kernel allow tries hold 16 384 with the never-ban list)').default([]),
    /** Detected and logged, never banned. `auto` adds this host's addresses, gateways and resolvers. */
    never_ban: z
      .object({
        auto: z.boolean().default(true),
        resolv_conf: z.string().default('/etc/resolv.conf'),
        cidrs: z
          .array(cidr('never_ban.cidrs'))
          .max(4096, "at most 4096 entries (the kernel allow tries also hold the allow list and this host's addresses)")
          .default([]),
      })
      .strict()
      .default({}),
    /** Caps: automatic bans per minute (kernel-enforced), and bans in the table (automatic ones evicted first). */
    max_auto_bans_per_minute: z.number().int().min(0).max(0xffffffff).default(600),
    max_bans: z.number().int().min(1).max(MapSize.bansV4).default(1_000_000),
    /**
     * A spoofed flood crosses the trigger from a new address on every packet. Above `pressure`
     * crossings a second a ban needs probes to two ports (or a sweep), so the flood cannot spend
     * the ban budget while a real scanner is still banned at once; 0 turns that off. Above
     * `alerts_per_second`, alerts that ban nothing go into one summary line a second; 0 logs all.
     */
    flood: z
      .object({
        pressure: z.number().int().min(0).max(1_000_000).default(16),
        alerts_per_second: z.number().int().min(0).max(100_000).default(10),
      })
      .strict()
      .default({}),
    nft: z
      .object({
        enabled: z.boolean().default(true),
        table: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]{0,31}$/)
          .default('sentry_xdp'),
      })
      .strict()
      .default({}),
    /** History in Redis (and the fleet), else the local journal under the state directory. */
    redis: z
      .object({
        url: z.string().optional(),
        sentinels: z.array(z.object({ host: z.string().min(1), port: listenPort }).strict()).optional(),
        name: z.string().optional(),
        cluster: z.array(z.object({ host: z.string().min(1), port: listenPort }).strict()).optional(),
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9:_.-]+$/)
          .default('sentry-xdp'),
        maxlen: z.number().int().min(1000).max(1_000_000_000).default(1_000_000),
        buffer: z.number().int().min(100).max(10_000_000).default(100_000),
      })
      .strict()
      .optional(),
    history: z
      .object({
        max_bytes: z
          .number()
          .int()
          .min(1 << 20)
          .max(2 ** 40)
          .default(64 << 20),
      })
      .strict()
      .default({}),
    /** Bans shared with the other gateways on the same Redis. */
    fleet: z
      .object({
        name: z
          .string()
          .regex(/^[A-Za-z0-9_.-]+$/)
          .optional(),
        send: z.boolean().default(true),
        receive: z.boolean().default(true),
      })
      .strict()
      .default({}),
    /** Notifications that never flood: one digest per interval, immediate only for urgent events. */
    notify: z
      .object({
        command: z.string().optional(),
        webhook: z
          .string()
          .url()
          .refine((u) => /^https?:\/\//i.test(u.trim()), { message: 'must be an http or https URL, e.g. https://hooks.example.net/sentry' })
          .optional(),
        interval: duration('notify.interval', false, { max: 86400 }).default('5m'),
        urgent: z
          .array(
            z
              .object({
                cidr: cidr('notify.urgent.cidr').optional(),
                port: z.number().int().min(1).max(65535).optional(),
                proto: z.enum(['tcp', 'udp']).optional(),
                kind: z.enum(['alert', 'ban', 'unban', 'not_blocked']).optional(),
                origin: z.string().optional(),
              })
              .strict()
              .refine((r) => Object.values(r).some((v) => v !== undefined), {
                message: 'an urgent rule with no condition would make every event urgent; give cidr, port, proto, kind or origin',
              }),
          )
          .default([]),
        timeout: duration('notify.timeout', false, { max: 3600 }).default('10s'),
      })
      .strict()
      .default({}),
    /** Also log to syslog with PortSentry's facility (daemon) and wording. */
    syslog: z
      .object({
        enabled: z.boolean().default(false),
        // checked here, not when the daemon opens the socket after attaching: `config check` must catch them
        facility: z
          .string()
          .toLowerCase()
          .refine((f) => Object.hasOwn(FACILITIES, f), { message: `unknown facility; use one of ${Object.keys(FACILITIES).join(', ')}` })
          .default('daemon'),
        tag: z
          .string()
          .regex(/^[A-Za-z0-9._/-]{1,48}$/, 'not a program name; use letters, digits, . _ / - (at most 48), e.g. portsentry')
          .default('sentry-xdp'),
        path: z
          .string()
          .refine((p) => p.startsWith('/') && Buffer.byteLength(p) < 108 && !p.includes('\0'), {
            message: 'not a unix socket path; give an absolute path shorter than 108 bytes, e.g. /dev/log',
          })
          .default('/dev/log'),
      })
      .strict()
      .default({}),
    /** Prometheus endpoint; localhost by default. */
    metrics: z
      .object({
        enabled: z.boolean().default(true),
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(9641),
      })
      .strict()
      .default({}),
    /** PortSentry's RESOLVE_HOST: names of sources in alert lines, looked up off the hot path. */
    resolve_host: z.boolean().default(false),
    /** PortSentry's KILL_* commands, with $TARGET$, $PORT$ and $MODE$. */
    hooks: z
      .object({
        kill_route: hookTemplate.default(''),
        kill_hosts_deny: hookTemplate.default(''),
        hosts_deny_file: z.string().default('/etc/hosts.deny'),
        kill_run_cmd: hookTemplate.default(''),
        kill_run_cmd_first: z.boolean().default(false),
        unban_cmd: hookTemplate.default(''),
        timeout: duration('hooks.timeout', false, { max: 3600 }).default('10s'),
      })
      .strict()
      .default({}),
  })
  .strict();

export type Config = z.output<typeof ConfigSchema>;

/** What a key of the config means: its comment in `config defaults` and its row in README's table. */
export interface KeyDoc {
  /** One line: the comment above the key in `config defaults`, and README's "meaning". */
  doc: string;
  /** PortSentry's setting, where there is one. */
  portsentry?: string;
  /** README's default, where the value itself says too little or too much. */
  shown?: string;
  /** More for README's table only. */
  more?: string;
  /** For a key with no default: an example, printed commented out. */
  example?: unknown;
}

/**
 * Every key of ConfigSchema (sections too), by its dotted path. `config defaults`
 * and README's table are generated from ConfigSchema and this table
 * (src/core/config-doc.ts); a unit test fails when a key has no entry, an
 * entry names no key, or README's table is not what they give.
 */
export const CONFIG_DOCS: Readonly<Record<string, KeyDoc>> = {
  tcp_ports: {
    doc: 'TCP ports watched: "1,11,6000-6063" or a YAML list',
    portsentry: 'TCP_PORTS',
    shown: "PortSentry's aware list, less the ephemeral range",
    more: "`config check` and the daemon warn about ports inside this host's `ip_local_port_range`",
  },
  udp_ports: { doc: 'UDP ports watched: "1,7,161-162" or a YAML list', portsentry: 'UDP_PORTS', shown: "PortSentry's aware list, less the ephemeral range" },
  advanced: { doc: "PortSentry's advanced mode: every port below a limit that nothing listens on is watched too" },
  'advanced.tcp': { doc: 'also watch every TCP port below this that nothing listens on; 0 off', portsentry: 'ADVANCED_PORTS_TCP' },
  'advanced.udp': { doc: 'also watch every UDP port below this that nothing listens on; 0 off', portsentry: 'ADVANCED_PORTS_UDP' },
  'advanced.exclude_tcp': { doc: 'TCP ports never watched in advanced mode', portsentry: 'ADVANCED_EXCLUDE_TCP' },
  'advanced.exclude_udp': { doc: 'UDP ports never watched in advanced mode', portsentry: 'ADVANCED_EXCLUDE_UDP' },
  scan_trigger: { doc: "alert when a source's probes within scan_window exceed this (0: at the first probe)", portsentry: 'SCAN_TRIGGER' },
  sweep_trigger: {
    doc: 'distinct hosts of protect.networks one source may reach (SYN, UDP or ping, any port) within scan_window before it is a sweep; 0 off',
    more: 'a sweep is alerted and banned; there is nothing to sweep without `protect.networks`',
  },
  scan_window: { doc: 'how long probes count towards the triggers (1s to 1d)' },
  block_tcp: { doc: '0 log only; 1 ban (XDP, nftables) and run the kill_* hooks; 2 run kill_run_cmd only', portsentry: 'BLOCK_TCP' },
  block_udp: { doc: '0 log only; 1 ban (XDP, nftables) and run the kill_* hooks; 2 run kill_run_cmd only', portsentry: 'BLOCK_UDP' },
  ban_ttl: { doc: 'automatic and default manual ban length: 90s, 10m, 1h30m, 7d, or permanent' },
  ttl_rules: { doc: 'per-network ban lengths, [{ cidr, ttl }]; the most specific match wins (applied in the kernel)' },
  escalation: { doc: 'repeat offenders: the n-th ban of a source within lookback lasts ttl * factor^(n-1), at most max' },
  'escalation.enabled': { doc: 'ban repeat offenders longer' },
  'escalation.factor': { doc: 'each further ban of a source lasts this many times the one before (1 to 100)' },
  'escalation.max': { doc: 'the longest an escalated ban lasts (or permanent)' },
  'escalation.lookback': { doc: "how long a ban counts towards a source's next one" },
  protect: { doc: 'the gateway model: what a probe may be addressed to besides this host\'s own addresses (README "Running on a gateway")' },
  'protect.networks': { doc: "networks behind this gateway whose unused ports are tripwires too; this host's own addresses always are" },
  'protect.services': { doc: "real services there, never tripwires: ADDRESS[/PREFIX]:PORT[-PORT]/tcp|udp (or a port forward on this host's address)" },
  allow: { doc: 'addresses and CIDRs never counted, never banned, never dropped (the kernel checks them first)', portsentry: 'IGNORE_FILE' },
  never_ban: { doc: 'sources that are detected and logged, never banned' },
  'never_ban.auto': { doc: "add this host's addresses, default gateways and resolv.conf nameservers (refreshed every 30 s)" },
  'never_ban.resolv_conf': { doc: 'where never_ban.auto reads the nameservers' },
  'never_ban.cidrs': { doc: 'more addresses and CIDRs that are alerted, never banned' },
  max_auto_bans_per_minute: {
    doc: 'cap on automatic bans a minute, enforced in the kernel; beyond it alerts go on, bans do not; 0 no cap',
    more: 'counted as `bans refused by cap`',
  },
  max_bans: { doc: 'bans the table holds; over it the automatic bans closest to expiry are evicted first (counted), manual bans never' },
  flood: { doc: 'a spoofed flood must spend neither the ban budget nor the log' },
  'flood.pressure': {
    doc: 'trigger crossings a second above which a ban needs probes to two ports, or a sweep; 0 off',
    more: 'counted this second or the last: a spoofed `--rand-source` flood crosses the trigger from a new address on every packet and can no longer spend the ban budget, while a real scanner is banned at its second port',
  },
  'flood.alerts_per_second': {
    doc: 'alerts that ban nothing logged one by one each second; beyond it, one summary line a second; 0 logs all',
    more: 'alerts that ban nothing are log-only, never-ban, possibly spoofed or capped ones; the summary (`attackalert: flood: ...`: sources, probes, ports) also covers the crossings the flood rule did not ban; the counts are in metrics (`flood_bans_deferred_total`, `alerts_summarised_total`); a ban is always logged',
  },
  nft: { doc: "our own nftables table (table inet), kept in step with the kernel's bans" },
  'nft.enabled': { doc: 'also keep the bans in nftables sets; false for XDP only' },
  'nft.table': { doc: 'the name of our table inet; no other table is touched' },
  redis: { doc: 'history and the fleet in Redis; when not set, history goes to the local journal under the state directory' },
  'redis.url': { doc: 'redis://, rediss:// or unix:///path', shown: '`redis://127.0.0.1:6379`', example: 'redis://127.0.0.1:6379/0' },
  'redis.sentinels': { doc: 'Redis Sentinel servers, [{ host, port }], with redis.name (instead of url)', example: [{ host: '192.0.2.5', port: 26379 }] },
  'redis.name': { doc: 'the name of the master the sentinels watch', example: 'mymaster' },
  'redis.cluster': { doc: 'Redis Cluster nodes, [{ host, port }] (instead of url)', example: [{ host: '192.0.2.7', port: 6379 }] },
  'redis.prefix': { doc: 'prefix of every Redis key sentry-xdp writes' },
  'redis.maxlen': { doc: 'events kept in the events stream (trimmed with MAXLEN ~)' },
  'redis.buffer': { doc: 'events held in memory while Redis is down; beyond it they are lost (counted in metrics)' },
  history: { doc: 'the local journal (without redis)' },
  'history.max_bytes': { doc: 'size past which the journal is rotated (alerts) or compacted (bans)', shown: '`67108864` (64 MiB)' },
  fleet: { doc: 'bans shared with the other gateways on the same Redis' },
  'fleet.name': { doc: "this gateway's name in the fleet", shown: 'the host name', example: 'gw-a' },
  'fleet.send': { doc: "send this gateway's bans to the fleet" },
  'fleet.receive': { doc: "apply the other gateways' bans" },
  notify: { doc: 'notifications that never flood: one digest per interval, at once only for urgent events' },
  'notify.command': { doc: 'command run with the digest on stdin ($SUBJECT$: its subject)', example: '/usr/bin/mail -s $SUBJECT$ root' },
  'notify.webhook': { doc: 'http or https URL the digest is POSTed to as JSON', example: 'https://hooks.example.org/sentry' },
  'notify.interval': { doc: 'at most one digest per interval' },
  'notify.urgent': { doc: 'events sent at once (at most 10 per interval): [{ cidr, port, proto, kind, origin }], every condition given must match' },
  'notify.timeout': { doc: 'how long the command or the webhook may take' },
  syslog: { doc: "also log to syslog, with PortSentry's facility and wording" },
  'syslog.enabled': { doc: 'also write the lines to syslog (alerts and bans at level notice)' },
  'syslog.facility': { doc: `the syslog facility: ${Object.keys(FACILITIES).join(', ')}` },
  'syslog.tag': { doc: 'the program name in syslog; portsentry keeps old filters matching' },
  'syslog.path': { doc: 'the syslog socket' },
  metrics: { doc: 'the Prometheus endpoint (/metrics)' },
  'metrics.enabled': { doc: 'serve /metrics' },
  'metrics.host': { doc: 'address to listen on' },
  'metrics.port': { doc: 'TCP port to listen on' },
  resolve_host: { doc: 'source names in alert lines, looked up off the alert path (2 s timeout, cached)', portsentry: 'RESOLVE_HOST' },
  hooks: { doc: 'PortSentry\'s KILL_* commands; tokens $TARGET$, $PORT$, $MODE$ (README "Hooks")' },
  'hooks.kill_route': { doc: 'command run at an automatic ban; empty: none', portsentry: 'KILL_ROUTE' },
  'hooks.kill_hosts_deny': { doc: 'line written into hosts_deny_file at an automatic ban and removed at its end; empty: none', portsentry: 'KILL_HOSTS_DENY' },
  'hooks.hosts_deny_file': { doc: 'the file kill_hosts_deny lines go into' },
  'hooks.kill_run_cmd': { doc: 'command run at an automatic ban (the only thing done with block_*: 2); empty: none', portsentry: 'KILL_RUN_CMD' },
  'hooks.kill_run_cmd_first': { doc: 'run kill_run_cmd before blocking instead of after', portsentry: 'KILL_RUN_CMD_FIRST' },
  'hooks.unban_cmd': { doc: 'command run once when an automatic ban ends, however it ends; empty: none' },
  'hooks.timeout': { doc: 'a hook still running after this is killed with its process group' },
};

export function defaultConfig(): Config {
  return ConfigSchema.parse({});
}

/**
 * Parses and validates a YAML config. Errors name the file, the line and the
 * key, and say what was expected.
 */
export function parseConfig(text: string, file: string): Config {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new SentryError('CONFIG', `${file}:${pos.line}: YAML syntax error: ${e.message.split('\n')[0]}`, 'fix the YAML syntax');
  }
  const raw = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SentryError('CONFIG', `${file}: expected a mapping of settings at the top level`, 'see README "Configuration"');
  }
  const res = ConfigSchema.safeParse(raw);
  if (res.success) return res.data;
  const issue = res.error.issues[0]!;
  const key = issue.path.join('.') || '(top level)';
  const node = issue.path.length ? doc.getIn(issue.path, true) : undefined;
  const parentNode = issue.path.length > 1 ? doc.getIn(issue.path.slice(0, -1), true) : undefined;
  const at = [node, parentNode].find((n) => isNode(n) && n.range);
  const line = at && isNode(at) && at.range ? `:${lc.linePos(at.range[0]).line}` : '';
  let msg = issue.message;
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    msg = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    const k = issue.keys[0]!;
    const pair = doc.getIn([...issue.path, k], true);
    const l = isNode(pair) && pair.range ? `:${lc.linePos(pair.range[0]).line}` : line;
    throw new SentryError('CONFIG', `${file}${l}: ${msg}`, 'see README "Configuration" for the keys');
  }
  throw new SentryError('CONFIG', `${file}${line}: ${key}: ${msg}`, 'see README "Configuration" for the keys');
}

/**
 * What is valid but probably not meant, as `config check` and the daemon's
 * start-up say it: watched ports where replies land, services that can have no effect.
 */
export function configWarnings(cfg: Config, ephemeral: [number, number] | undefined, hostAddresses: readonly string[] = []): string[] {
  const out = ephemeralWarnings({ tcp: cfg.tcp_ports, udp: cfg.udp_ports }, ephemeral);
  for (const proto of ['tcp', 'udp'] as const) {
    const below = cfg.advanced[proto];
    if (ephemeral && below > ephemeral[0]) {
      out.push(
        `advanced.${proto}: ${below} reaches into the ephemeral range ${ephemeral[0]}-${ephemeral[1]}: replies to outgoing connections land there; they are probes only when no socket or conntrack entry owns them`,
      );
    }
  }
  const hosts = hostAddresses.map((a) => parseCidr(a));
  return [
    ...out,
    ...serviceWarnings(
      cfg.protect.networks.map((n) => parseCidr(n)),
      cfg.protect.services.map(parseService),
      hosts,
    ),
  ];
}
