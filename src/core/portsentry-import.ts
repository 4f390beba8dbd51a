/**
 * `sentry-xdp config import-portsentry`: turns a PortSentry 1.x `portsentry.conf` (and, when given, its
 * ignore file) into a sentry.yaml that ConfigSchema accepts, with a comment on every key naming the
 * PortSentry setting it came from, and a note for everything that has no equivalent or changes meaning.
 *
 * Pure: text in, text out. The CLI reads the files and prints the notes.
 *
 * Decisions (each is also explained to the user in a note or a comment):
 *  - Modes. PortSentry runs one process per mode (-tcp, -udp, -stcp, -sudp, -atcp, -audp); which ones ran
 *    is not in the file. Without `modes`, every mode the file configures is imported. tcp/stcp (udp/sudp)
 *    watch TCP_PORTS (UDP_PORTS); atcp (audp) is advanced mode: every port below ADVANCED_PORTS_TCP that
 *    nothing listens on, minus ADVANCED_EXCLUDE_TCP. PortSentry's advanced mode ignores TCP_PORTS, and
 *    sentry-xdp's advanced mode adds the listed ports to the range, so with atcp but neither tcp nor stcp
 *    the list is left empty (otherwise a port the admin excluded, like 80, would be watched again).
 *  - ban_ttl: 1h, not permanent. PortSentry's bans never ended; sentry-xdp's expire in the kernel and
 *    repeat offenders get longer ones (escalation). `ban_ttl: permanent` gives PortSentry's behaviour back.
 *  - SCAN_TRIGGER is copied as documented ("connects allowed before the alarm"), which is what
 *    sentry-xdp's scan_trigger means; PortSentry's code alarmed one connect earlier (noted).
 *  - Settings PortSentry reads, but the way it reads them differs from how they are written (inner quotes,
 *    missing quotes, duplicates), are imported as written, with a note saying what PortSentry really did.
 */
import { stringify } from 'yaml';
import { SentryError } from '../errors.js';
import { parseCidr } from './addr.js';
import { planHook } from './hook-command.js';
import { ephemeralWarnings, LINUX_EPHEMERAL_RANGE, parsePortList } from './ports.js';

/** PortSentry's run modes, as given on its command line without the dash. */
export const PORTSENTRY_MODES = ['tcp', 'udp', 'stcp', 'sudp', 'atcp', 'audp'] as const;
export type PortsentryMode = (typeof PORTSENTRY_MODES)[number];

export interface ImportInput {
  conf: string;
  confName: string;
  ignore?: string;
  ignoreName?: string;
  /** PortSentry run modes: tcp, udp, stcp, sudp, atcp, audp; default: all that the config supports. */
  modes?: string[];
}

export interface ImportNote {
  /** The PortSentry setting (TCP_PORTS, IGNORE_FILE...), or the sentry.yaml key (ban_ttl, modes) when none. */
  key: string;
  /** 1-based line in `file`; 0 when the note is about the file as a whole or a setting that is absent. */
  line: number;
  message: string;
  /** confName or ignoreName: which file `line` refers to. */
  file: string;
}

export interface ImportResult {
  /** A complete sentry.yaml, with a header saying where it came from and a comment per key. */
  yaml: string;
  /** What has no equivalent, or was changed, and why; conf notes first, in line order. */
  notes: ImportNote[];
  /** The modes the YAML was built for. */
  modes: PortsentryMode[];
}

/** Every setting PortSentry 1.2 reads. */
const KNOWN_KEYS = new Set([
  'TCP_PORTS',
  'UDP_PORTS',
  'ADVANCED_PORTS_TCP',
  'ADVANCED_PORTS_UDP',
  'ADVANCED_EXCLUDE_TCP',
  'ADVANCED_EXCLUDE_UDP',
  'IGNORE_FILE',
  'HISTORY_FILE',
  'BLOCKED_FILE',
  'RESOLVE_HOST',
  'BLOCK_TCP',
  'BLOCK_UDP',
  'KILL_ROUTE',
  'KILL_HOSTS_DENY',
  'KILL_RUN_CMD',
  'KILL_RUN_CMD_FIRST',
  'SCAN_TRIGGER',
  'PORT_BANNER',
]);

/** PortSentry's own default when ADVANCED_PORTS_TCP/UDP is missing in an advanced mode. */
const PORTSENTRY_ADVANCED_DEFAULT = 1024;

/** Tokens used only to check that an imported hook command can be planned. */
const SAMPLE_TOKENS = { target: '192.0.2.1', port: 1, mode: 'tcp' } as const;

interface Setting {
  key: string;
  value: string;
  line: number;
}

/** One-line, bounded rendering of text for a message. */
function show(s: string, max = 60): string {
  const j = JSON.stringify(s);
  return j.length > max ? `${j.slice(0, max - 4)}..."` : j;
}

/** Text that goes into a YAML comment: one line, always. */
function oneLine(s: string): string {
  return s.replace(/[\r\n\u2028\u2029]+/g, ' ');
}

/** A YAML string scalar that parses back to exactly `v`: single-quoted when it can be, else double-quoted. */
function yamlString(v: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what makes a YAML scalar need double quotes
  const single = !v.includes("'") && !/[\u0000-\u001f\u007f]/.test(v);
  return stringify(v, { lineWidth: 0, defaultStringType: single ? 'QUOTE_SINGLE' : 'QUOTE_DOUBLE' }).trimEnd();
}

/** Port lists are always double-quoted: a bare `80` would be a number, which the schema does not take. */
function yamlPorts(v: string): string {
  return stringify(v, { lineWidth: 0, defaultStringType: 'QUOTE_DOUBLE' }).trimEnd();
}

class Notes {
  readonly list: ImportNote[] = [];
  constructor(private readonly defaultFile: string) {}
  add(key: string, line: number, message: string, file = this.defaultFile): void {
    this.list.push({ key, line, message: oneLine(message), file });
  }
}

// ---------------------------------------------------------------------------------------------------------
// portsentry.conf

/**
 * Reads `KEY="value"` lines the way an admin means them: `KEY = "value"`, unquoted values, `#` comments,
 * blank lines. A quoted value runs from the first to the last double quote on the line, so inner quotes
 * survive. Broken lines become notes. The first occurrence of a key wins, as in PortSentry.
 */
export function parsePortsentryConf(text: string, confName: string): { settings: Map<string, Setting>; notes: ImportNote[] } {
  const notes = new Notes(confName);
  const settings = new Map<string, Setting>();
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const t = lines[i]!.replace(/\r$/, '').trim();
    if (t === '' || t.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(t);
    if (!m) {
      notes.add('', line, `not a KEY="value" line, skipped: ${show(t)}`);
      continue;
    }
    const key = m[1]!;
    const rest = m[2]!;
    let value: string;
    if (rest.startsWith('"')) {
      const last = rest.lastIndexOf('"');
      if (last === 0) {
        notes.add(key, line, `${key}: the value has no closing double quote (a line wrapped in two?), skipped: ${show(t)}`);
        continue;
      }
      value = rest.slice(1, last);
      const after = rest.slice(last + 1).trim();
      if (after !== '' && !after.startsWith('#')) notes.add(key, line, `${key}: text after the closing quote ignored: ${show(after)}`);
      if (value.includes('"') && KNOWN_KEYS.has(key)) {
        notes.add(
          key,
          line,
          `${key}: the value contains double quotes; PortSentry 1.x stopped reading at the second quote and used only ` +
            `${show(value.slice(0, value.indexOf('"')), 100)}; imported the whole value as written`,
        );
      }
    } else {
      value = rest.replace(/\s+#.*$/, '').trim();
      if (KNOWN_KEYS.has(key) && value !== '') {
        const why = 'PortSentry 1.x skipped such settings ("Quotes missing"), imported as written';
        notes.add(key, line, `${key}: the value is not in double quotes; ${why}`);
      }
    }
    if (!KNOWN_KEYS.has(key)) {
      const upper = key.toUpperCase();
      const hint = upper !== key && KNOWN_KEYS.has(upper) ? ` (PortSentry matches names case-sensitively: did you mean ${upper}?)` : '';
      notes.add(key, line, `${key}: not a PortSentry setting, ignored${hint}`);
      continue;
    }
    const prev = settings.get(key);
    if (prev) {
      notes.add(key, line, `${key} is set again here; PortSentry uses the first one (line ${prev.line}), so this one is ignored`);
      continue;
    }
    settings.set(key, { key, value, line });
  }
  return { settings, notes: notes.list };
}

/** "tcp,udp", ["-atcp", "sudp"] → modes; throws SentryError('USAGE') on anything else. */
export function parseModes(modes: string | readonly string[]): PortsentryMode[] {
  const parts = (typeof modes === 'string' ? [modes] : modes).flatMap((m) => m.split(/[\s,]+/));
  const out: PortsentryMode[] = [];
  for (const raw of parts) {
    if (raw === '') continue;
    const m = raw.replace(/^-+/, '').toLowerCase();
    if (!(PORTSENTRY_MODES as readonly string[]).includes(m)) {
      const hint = `use a comma list of ${PORTSENTRY_MODES.join(', ')}`;
      throw new SentryError('USAGE', `--modes: ${show(raw)} is not a PortSentry mode`, hint);
    }
    if (!out.includes(m as PortsentryMode)) out.push(m as PortsentryMode);
  }
  if (out.length === 0) {
    throw new SentryError('USAGE', '--modes: no mode given', `use a comma list of ${PORTSENTRY_MODES.join(', ')}, e.g. --modes tcp,udp`);
  }
  return out;
}

/** The comma list with entries sentry-xdp would reject removed (each dropped entry is named in a note). */
function importPortList(s: Setting, notes: Notes): string {
  const good: string[] = [];
  const bad: string[] = [];
  for (const raw of s.value.split(',')) {
    const tok = raw.trim();
    if (tok === '') continue;
    try {
      parsePortList(tok, s.key);
      good.push(tok.replace(/\s+/g, ''));
    } catch {
      bad.push(tok);
    }
  }
  if (bad.length) {
    notes.add(s.key, s.line, `${s.key}: dropped ${bad.map((b) => show(b, 24)).join(', ')}: not a port or port range (ports are 1-65535)`);
  }
  return good.join(',');
}

/** PortSentry's atoi(): leading digits, else 0. `ok` says the whole value was a plain number. */
function atoi(v: string): { n: number; ok: boolean } {
  const m = /^\s*([+-]?\d+)/.exec(v);
  const n = m ? Number(m[1]) : 0;
  return { n: Number.isSafeInteger(n) ? n : 0, ok: /^\s*\d+\s*$/.test(v) };
}

// ---------------------------------------------------------------------------------------------------------
// portsentry.ignore

/** "255.255.255.0" → 24; undefined when it is not a contiguous IPv4 netmask. */
export function dottedMaskToPrefix(mask: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(mask);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  const bits = octets.reduce((acc, o) => acc * 256 + o, 0);
  let prefix = 0;
  while (prefix < 32 && ((bits >>> (31 - prefix)) & 1) === 1) prefix++;
  const expected = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return bits === expected ? prefix : undefined;
}

export interface IgnoreEntry {
  cidr: string;
  line: number;
}

/**
 * PortSentry's ignore file: one address or network a line (`a.b.c.d`, `a.b.c.d/24`, `a.b.c.d/255.255.255.0`),
 * `#` comments. Dotted masks become prefix lengths; `/0` entries (allow everyone) are dropped with a note.
 */
export function parseIgnoreFile(text: string, ignoreName: string): { entries: IgnoreEntry[]; notes: ImportNote[] } {
  const notes = new Notes(ignoreName);
  const entries: IgnoreEntry[] = [];
  const seen = new Map<string, number>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const t = lines[i]!.replace(/#.*/, '').trim();
    if (t === '') continue;
    const [tok, ...extra] = t.split(/\s+/) as [string, ...string[]];
    if (extra.length) notes.add('IGNORE_FILE', line, `text after ${show(tok, 45)} ignored, as PortSentry does: ${show(extra.join(' '))}`);
    const parts = tok.split('/');
    let written = tok;
    if (parts.length === 2 && parts[1]!.includes('.')) {
      const prefix = dottedMaskToPrefix(parts[1]!);
      if (prefix === undefined || parts[0]!.includes(':')) {
        const why = 'is not a netmask (the one bits must be contiguous, like 255.255.255.0); entry dropped';
        notes.add('IGNORE_FILE', line, `${show(tok, 45)}: ${show(parts[1]!)} ${why}`);
        continue;
      }
      written = `${parts[0]}/${prefix}`;
    }
    let cidr;
    try {
      cidr = parseCidr(written);
    } catch (e) {
      const err = e as SentryError;
      const what = /^[0-9.:/]+$/.test(tok)
        ? `${err.message} (${err.hint ?? ''})`
        : `${show(tok, 45)} is not an address: PortSentry reads only addresses and networks here, no host names`;
      notes.add('IGNORE_FILE', line, `${what}; entry dropped`);
      continue;
    }
    if (cidr.prefix === 0) {
      notes.add('IGNORE_FILE', line, `${show(tok, 45)} would allow every source and switch detection off; entry dropped`);
      continue;
    }
    if (cidr.family === 4 && cidr.prefix === 32 && cidr.text === '0.0.0.0') {
      // PortSentry compares the packet's source with each entry (NeverBlock), so 0.0.0.0 spares packets
      // from the unspecified address (DHCP clients asking for a lease), which never_ban.auto does not cover.
      notes.add(
        'IGNORE_FILE',
        line,
        `${show(tok, 45)} kept: it does not mean "any address" or "this host"; PortSentry compared each packet's source with it, ` +
          'so it spares packets sent from 0.0.0.0 (DHCP clients asking for a lease), which never_ban.auto does not cover',
      );
    }
    const addrPart = parts[0]!;
    if (cidr.prefix !== (cidr.family === 4 ? 32 : 128) && !cidr.text.startsWith(`${addrPart}/`)) {
      const why = `PortSentry compared only the network part, imported as ${cidr.text}`;
      notes.add('IGNORE_FILE', line, `${show(tok, 45)} has host bits set; ${why}`);
    }
    const dup = seen.get(cidr.text);
    if (dup !== undefined) {
      notes.add('IGNORE_FILE', line, `${cidr.text} is already listed on line ${dup}; duplicate dropped`);
      continue;
    }
    seen.set(cidr.text, line);
    entries.push({ cidr: cidr.text, line });
  }
  return { entries, notes: notes.list };
}

// ---------------------------------------------------------------------------------------------------------
// hooks

/** Firewall tools that no kernel sentry-xdp runs on still has: a hook using them can only fail. */
const OBSOLETE_FIREWALL = /(^|[\s/;&|(])(ipchains|ipfwadm)(\s|$)/;

/** `iptables [-t TABLE] [-w [N]] -I|-A CHAIN [POS] rule...`: binary, options, chain, position, rule. */
const IPTABLES_ADD = new RegExp(
  String.raw`^((?:\S*\/)?ip6?tables(?:-legacy|-nft)?)` +
    String.raw`((?:\s+(?:-t|--table)\s+\S+|\s+-w(?:\s+\d+)?)*)` +
    String.raw`\s+(?:-I|--insert|-A|--append)\s+(\S+)(\s+\d+)?(\s+.+)$`,
);

/**
 * The command that undoes a KILL_ROUTE, when its first command is a plain `iptables -I/-A CHAIN ...`,
 * `route add ...` or `ip route add ...` (the rest, e.g. `&& echo ... >> log`, is not undone).
 */
export function deriveUnbanCommand(killRoute: string): string | undefined {
  const first = killRoute.split(/&&|\|\||;|\|/)[0]!.trim();
  if (!/^[A-Za-z0-9_./$:= -]+$/.test(first) || !first.includes('$TARGET$')) return undefined;
  const ipt = IPTABLES_ADD.exec(first);
  if (ipt) {
    // `-I CHAIN 3 ...` inserts at a position; -D takes the rule without it
    const [, bin, opts, chain, , rest] = ipt;
    return `${bin}${opts} -D ${chain}${rest}`;
  }
  const route = /^((?:\S*\/)?route)\s+add(\s+.+)$/.exec(first);
  if (route) return `${route[1]} del${route[2]}`;
  const iproute = /^((?:\S*\/)?ip)((?:\s+-[46])?)\s+(route|ro|r)\s+(?:add|replace)(\s+.+)$/.exec(first);
  if (iproute) return `${iproute[1]}${iproute[2]} ${iproute[3]} del${iproute[4]}`;
  return undefined;
}

/** Whether the daemon's hook runner can plan `cmd`; the reason when it cannot. */
function unplannable(cmd: string): string | undefined {
  try {
    planHook(cmd, { ...SAMPLE_TOKENS });
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

// ---------------------------------------------------------------------------------------------------------
// the import: one step per portsentry.conf concern, each adding its YAML lines and its notes

type Proto = 'tcp' | 'udp';

/** `(line N)` after a setting's name in a YAML comment, or nothing when the setting is absent. */
function at(s: Setting | undefined): string {
  return s ? ` (line ${s.line})` : '';
}

/**
 * One import. The steps run in a fixed order: notes on the same line keep the order they were added in
 * (sortNotes), so the order of the steps is part of the output.
 */
class Importer {
  readonly notes: Notes;
  readonly modes: PortsentryMode[];
  /** The modes came from --modes, not from what the file configures. */
  readonly explicit: boolean;

  constructor(
    private readonly settings: Map<string, Setting>,
    parseNotes: ImportNote[],
    confName: string,
    modes: string[] | undefined,
  ) {
    this.notes = new Notes(confName);
    this.notes.list.push(...parseNotes);
    this.explicit = modes !== undefined;
    this.modes = modes !== undefined ? parseModes(modes) : this.configuredModes();
  }

  /** A setting with a non-empty value. */
  get(key: string): Setting | undefined {
    const s = this.settings.get(key);
    return s && s.value.trim() !== '' ? s : undefined;
  }

  has(m: PortsentryMode): boolean {
    return this.modes.includes(m);
  }

  private configuredModes(): PortsentryMode[] {
    const key: Record<PortsentryMode, string> = {
      tcp: 'TCP_PORTS',
      stcp: 'TCP_PORTS',
      udp: 'UDP_PORTS',
      sudp: 'UDP_PORTS',
      atcp: 'ADVANCED_PORTS_TCP',
      audp: 'ADVANCED_PORTS_UDP',
    };
    return PORTSENTRY_MODES.filter((m) => this.get(key[m]));
  }

  /** Notes on the modes: which were assumed, and what classic mode becomes. */
  modeNotes(): void {
    const modes = this.modes;
    if (!this.explicit) {
      this.notes.add(
        'modes',
        0,
        modes.length
          ? `no --modes given: imported as if PortSentry ran in every mode this file configures (${modes.join(', ')}); ` +
              'pass --modes with the modes it really ran in (Debian starts it with TCP_MODE/UDP_MODE from /etc/default/portsentry, ' +
              'tcp and udp by default)'
          : 'no --modes given and the file configures no mode (no TCP_PORTS, UDP_PORTS or ADVANCED_PORTS_*): ' + 'no port is watched; add tcp_ports/udp_ports',
      );
    }
    if (this.has('tcp') || this.has('udp')) {
      const which = this.has('tcp') && this.has('udp') ? 's tcp and udp' : ` ${this.has('tcp') ? 'tcp' : 'udp'}`;
      this.notes.add(
        'modes',
        0,
        `classic mode${which} imported like the stealth modes: sentry-xdp never binds the ports, it sees every packet in XDP, ` +
          'so SYN, FIN, NULL and XMAS probes are detected too (as -stcp did), not only full connects',
      );
    }
  }

  /** SCAN_TRIGGER → scan_trigger. */
  trigger(): { trig: Setting | undefined; trigger: number } {
    const trig = this.get('SCAN_TRIGGER');
    if (!trig) {
      this.notes.add('SCAN_TRIGGER', 0, 'SCAN_TRIGGER is not set: 0 (react at once), as PortSentry assumed');
      return { trig, trigger: 0 };
    }
    const { n, ok } = atoi(trig.value);
    const trigger = Math.min(Math.max(0, n), 0xffffffff);
    if (!ok) {
      const why = `is not a number; imported as ${trigger}, as PortSentry read it`;
      this.notes.add('SCAN_TRIGGER', trig.line, `SCAN_TRIGGER=${show(trig.value)} ${why}`);
    }
    if (trigger > 0) {
      this.notes.add(
        'SCAN_TRIGGER',
        trig.line,
        `SCAN_TRIGGER=${trigger}: sentry-xdp alerts when a source's probes within scan_window exceed ${trigger}, ` +
          "as PortSentry's documentation says; PortSentry 1.x's code alerted one connect earlier and never forgot a source; " +
          `for its exact timing use scan_trigger: ${trigger - 1}`,
      );
    }
    return { trig, trigger };
  }

  /** TCP_PORTS / UDP_PORTS → tcp_ports / udp_ports, in the modes that use the list. */
  portList(proto: Proto): string[] {
    const P = proto.toUpperCase();
    const listKey = `${P}_PORTS`;
    const list = this.get(listKey);
    const lines: string[] = [];
    let ports = '';
    if (this.has(proto) || this.has(`s${proto}`)) {
      if (list) {
        ports = importPortList(list, this.notes);
        lines.push(`# ${listKey}${at(list)}: watched in modes ${proto}/s${proto}`);
        this.ephemeralNotes(proto, list, ports);
      } else {
        lines.push(`# ${listKey} is not set: no ${P} port listed`);
        const selected = this.modes.filter((m) => m === proto || m === `s${proto}`).join('/');
        const why = `(PortSentry would not start): no ${P} port is watched`;
        this.notes.add(listKey, 0, `mode ${selected} selected but ${listKey} is not set ${why}`);
      }
    } else if (this.has(`a${proto}`)) {
      lines.push(`# ${listKey}${at(list)}: not used in mode a${proto} (advanced mode watches a range instead)`);
      if (list) {
        this.notes.add(
          listKey,
          list.line,
          `${listKey} not imported: in mode a${proto} PortSentry ignores the list and watches every port below ADVANCED_PORTS_${P}; ` +
            `${proto}_ports would be watched in addition to that range (ports excluded by ADVANCED_EXCLUDE_${P} included), ` +
            `so it is left empty — add mode ${proto} or s${proto} to watch the list too`,
        );
      }
    } else {
      lines.push(`# ${listKey}${at(list)}: not used: no ${P} mode (${proto}, s${proto}, a${proto}) selected`);
      const why = `no ${P} port is watched (${proto}_ports is empty)`;
      this.notes.add(listKey, list?.line ?? 0, `no ${P} mode (${proto}, s${proto}, a${proto}) selected: ${why}`);
    }
    lines.push(`${proto}_ports: ${yamlPorts(ports)}`);
    return lines;
  }

  /** Listed ports in the ephemeral range, and a list with nothing usable left. */
  private ephemeralNotes(proto: Proto, list: Setting, ports: string): void {
    const listKey = list.key;
    const parsed = ports ? parsePortList(ports, listKey) : [];
    const byProto = { tcp: proto === 'tcp' ? parsed : [], udp: proto === 'udp' ? parsed : [] };
    for (const w of ephemeralWarnings(byProto, LINUX_EPHEMERAL_RANGE, `${listKey}:`)) {
      this.notes.add(listKey, list.line, `${w}; kept as imported`);
    }
    if (ports === '') this.notes.add(listKey, list.line, `${listKey} has no valid port left: no ${proto.toUpperCase()} port is watched`);
  }

  /** ADVANCED_PORTS_TCP / _UDP → advanced.tcp / .udp (lines indented under `advanced:`). */
  advancedPorts(proto: Proto, trigger: number): string[] {
    const P = proto.toUpperCase();
    const advKey = `ADVANCED_PORTS_${P}`;
    const adv = this.get(advKey);
    if (!this.has(`a${proto}`)) {
      const what = adv ? `${at(adv)}: ${show(adv.value)},` : ' is not set:';
      if (adv) {
        this.notes.add(
          advKey,
          adv.line,
          `advanced ${P} mode is off because mode a${proto} was not selected ` + `(pass --modes with a${proto} to import ${advKey}=${show(adv.value)})`,
        );
      }
      return [`  # ${advKey}${what} advanced mode off (mode a${proto} not selected)`, `  ${proto}: 0`];
    }
    if (!adv) {
      const n = PORTSENTRY_ADVANCED_DEFAULT;
      this.notes.add(advKey, 0, `mode a${proto} selected but ${advKey} is not set: PortSentry's default of ${n} applies`);
      return [`  # ${advKey} is not set: PortSentry's default in mode a${proto}`, `  ${proto}: ${n}`];
    }
    const { n, ok } = atoi(adv.value);
    const advPorts = Math.min(Math.max(n, 0), 65536);
    if (!ok || n !== advPorts) {
      this.notes.add(advKey, adv.line, `${advKey}=${show(adv.value)} is not a port count; imported as ${advPorts}`);
    }
    if (advPorts === 0) this.notes.add(advKey, adv.line, `${advKey} is 0: advanced ${P} mode watches nothing`);
    else {
      this.notes.add(
        advKey,
        adv.line,
        `advanced ${P} mode: any ${P} packet to one of the ${advPorts - 1} ports below ${advPorts} ` +
          'that nothing listens on counts as a probe (a stray client of a service that is down gets banned too)' +
          (trigger === 0 ? '; with scan_trigger 0 one packet is enough' : ''),
      );
    }
    return [`  # ${advKey}${at(adv)}: mode a${proto}; every ${P} port below this that nothing listens on is watched`, `  ${proto}: ${advPorts}`];
  }

  /** ADVANCED_EXCLUDE_TCP / _UDP → advanced.exclude_tcp / _udp. */
  advancedExclude(proto: Proto): string[] {
    const exKey = `ADVANCED_EXCLUDE_${proto.toUpperCase()}`;
    const ex = this.settings.get(exKey);
    const exPorts = ex ? importPortList(ex, this.notes) : '';
    const exWhat = [ex ? '' : 'PortSentry excluded no port', this.has(`a${proto}`) ? '' : 'used only in advanced mode'].filter(Boolean).join('; ');
    return [`  # ${exKey}${ex ? at(ex) : ' is not set'}${exWhat ? `: ${exWhat}` : ''}`, `  exclude_${proto}: ${yamlPorts(exPorts)}`];
  }

  /** BLOCK_TCP / BLOCK_UDP → block_tcp / block_udp. */
  block(proto: Proto): string[] {
    const key = `BLOCK_${proto.toUpperCase()}`;
    const s = this.get(key);
    let v = 0;
    if (!s) {
      this.notes.add(key, 0, `${key} is not set: PortSentry then only logged (0); imported as 0 — set block_${proto}: 1 to block`);
    } else {
      const { n, ok } = atoi(s.value);
      v = n === 1 || n === 2 ? n : 0;
      if (!ok || n !== v) {
        this.notes.add(key, s.line, `${key}=${show(s.value)} is not 0, 1 or 2; PortSentry then only logged, imported as 0`);
      }
    }
    if (v === 2 && !this.get('KILL_RUN_CMD')) {
      this.notes.add(
        key,
        s?.line ?? 0,
        `${key}=2 runs only KILL_RUN_CMD, which is not set: PortSentry neither blocked nor ran anything for ${proto.toUpperCase()} ` +
          `(KILL_ROUTE and KILL_HOSTS_DENY apply only with 1); imported as 2 — set block_${proto}: 1 to block`,
      );
    }
    return [
      `# ${key}${s ? at(s) : ' is not set'}: 0 log only, 1 block (XDP, nftables, then the KILL_* hooks), 2 run KILL_RUN_CMD only`,
      `block_${proto}: ${v}`,
    ];
  }

  banTtlNote(): void {
    this.notes.add(
      'ban_ttl',
      0,
      "PortSentry's bans never expired (admins flushed them by hand); sentry-xdp's expire in the kernel: imported as ban_ttl: 1h, " +
        "with repeat offenders banned longer (escalation, up to 7d); set ban_ttl: permanent for PortSentry's behaviour, " +
        'or ttl_rules for per-network lengths',
    );
  }

  /** IGNORE_FILE and the ignore file's content → allow. */
  allow(ignore: string | undefined, ignoreName: string): string[] {
    const setting = this.get('IGNORE_FILE');
    if (ignore === undefined) {
      if (!setting) return ['# IGNORE_FILE is not set: nothing is allowed', 'allow: []'];
      this.notes.add('IGNORE_FILE', setting.line, `IGNORE_FILE=${show(setting.value)} was not imported: pass --ignore FILE to import it`);
      return [`# IGNORE_FILE${at(setting)} = ${setting.value}: not imported (no --ignore FILE given)`, 'allow: []'];
    }
    const ig = parseIgnoreFile(ignore, ignoreName);
    this.notes.list.push(...ig.notes);
    const written = setting ? ` = ${setting.value}` : '';
    const lines = [`# IGNORE_FILE${at(setting)}${written}, read from ${ignoreName}: never counted, never banned`];
    if (ig.entries.length === 0) return [...lines, 'allow: []'];
    return [...lines, 'allow:', ...ig.entries.map((e) => `  - ${yamlString(e.cidr)} # line ${e.line}`)];
  }

  /** KILL_ROUTE, KILL_HOSTS_DENY, KILL_RUN_CMD(_FIRST) → hooks (lines indented under `hooks:`). */
  hooks(): string[] {
    return [...this.killRoute(), ...this.killHostsDeny(), ...this.killRunCmd()];
  }

  private checkHook(key: string, s: Setting): void {
    const why = unplannable(s.value);
    if (why) this.notes.add(key, s.line, `${key}: sentry-xdp cannot run this command (${why}); fix it before starting the daemon`);
  }

  private killRoute(): string[] {
    const r = this.get('KILL_ROUTE');
    if (!r) return ['  # KILL_ROUTE is not set'];
    if (!r.value.includes('$TARGET$')) {
      this.notes.add('KILL_ROUTE', r.line, 'KILL_ROUTE has no $TARGET$: PortSentry skipped it, and so does the import');
      return [`  # KILL_ROUTE${at(r)} has no $TARGET$: not imported`];
    }
    if (OBSOLETE_FIREWALL.test(r.value)) {
      this.notes.add(
        'KILL_ROUTE',
        r.line,
        'KILL_ROUTE uses ipchains/ipfwadm, which no current Linux kernel has: imported commented out; ' +
          'sentry-xdp already drops banned sources in XDP and nftables, so no KILL_ROUTE is needed',
      );
      return [
        `  # KILL_ROUTE${at(r)}: ipchains/ipfwadm no longer exist; sentry-xdp already drops the host in XDP and nftables`,
        `  # kill_route: ${yamlString(r.value)}`,
      ];
    }
    const unban = deriveUnbanCommand(r.value);
    this.notes.add(
      'KILL_ROUTE',
      r.line,
      'sentry-xdp already drops banned sources in XDP and nftables; KILL_ROUTE runs as an extra, ' +
        'and its rule stays after the ban expires ' +
        (unban ? 'unless undone: unban_cmd was derived to remove it — check it' : 'unless hooks.unban_cmd removes it (none could be derived)'),
    );
    const lines = [`  # KILL_ROUTE${at(r)}: runs in addition to the XDP and nftables ban`, `  kill_route: ${yamlString(r.value)}`];
    this.checkHook('KILL_ROUTE', r);
    if (!unban) return lines;
    return [...lines, '  # derived from KILL_ROUTE: removes its rule when the ban ends (PortSentry never did)', `  unban_cmd: ${yamlString(unban)}`];
  }

  private killHostsDeny(): string[] {
    const h = this.get('KILL_HOSTS_DENY');
    if (!h) return ['  # KILL_HOSTS_DENY is not set'];
    if (!h.value.includes('$TARGET$')) {
      this.notes.add('KILL_HOSTS_DENY', h.line, 'KILL_HOSTS_DENY has no $TARGET$: PortSentry skipped it, and so does the import');
      return [`  # KILL_HOSTS_DENY${at(h)} has no $TARGET$: not imported`];
    }
    if (!/^[^:]+:/.test(h.value)) {
      this.notes.add(
        'KILL_HOSTS_DENY',
        h.line,
        `KILL_HOSTS_DENY=${show(h.value)} does not look like a hosts.deny line ` + '("daemons : clients", e.g. "ALL: $TARGET$ : DENY"); imported as written',
      );
    }
    this.notes.add(
      'KILL_HOSTS_DENY',
      h.line,
      'KILL_HOSTS_DENY: sentry-xdp adds the line to /etc/hosts.deny at the ban and removes it when the ban ends ' + '(PortSentry never removed it)',
    );
    return [`  # KILL_HOSTS_DENY${at(h)}: added to hosts_deny_file at the ban, removed at the unban`, `  kill_hosts_deny: ${yamlString(h.value)}`];
  }

  private killRunCmd(): string[] {
    const c = this.get('KILL_RUN_CMD');
    const first = this.get('KILL_RUN_CMD_FIRST');
    if (!c) {
      if (first) this.notes.add('KILL_RUN_CMD_FIRST', first.line, 'KILL_RUN_CMD_FIRST has no effect without KILL_RUN_CMD; not imported');
      return ['  # KILL_RUN_CMD is not set'];
    }
    const lines = [`  # KILL_RUN_CMD${at(c)}`, `  kill_run_cmd: ${yamlString(c.value)}`];
    this.checkHook('KILL_RUN_CMD', c);
    this.notes.add(
      'KILL_RUN_CMD',
      c.line,
      'KILL_RUN_CMD: $TARGET$ and $PORT$ are validated before substitution' +
        (c.value.includes('$MODE$') ? ', and $MODE$ is tcp or udp (PortSentry gave its run mode, e.g. atcp)' : '') +
        '; the command is killed after hooks.timeout (10s) where PortSentry waited for it — ' +
        'a script that sleeps to lift a temporary ban will not finish: use ban_ttl or ttl_rules instead',
    );
    let runFirst = false;
    if (first) {
      const { n, ok } = atoi(first.value);
      runFirst = n !== 0;
      if (!ok) {
        const why = `is not a number; imported as ${runFirst}, as PortSentry read it`;
        this.notes.add('KILL_RUN_CMD_FIRST', first.line, `KILL_RUN_CMD_FIRST=${show(first.value)} ${why}`);
      }
    }
    return [
      ...lines,
      `  # KILL_RUN_CMD_FIRST${at(first)}${first ? '' : ' is not set'}: run KILL_RUN_CMD before (true) or after (false) blocking`,
      `  kill_run_cmd_first: ${runFirst}`,
    ];
  }

  /** PORT_BANNER, RESOLVE_HOST, HISTORY_FILE, BLOCKED_FILE: notes, and resolve_host, the one with an equivalent. */
  unmatched(): string[] {
    const trailer: string[] = [];
    const banner = this.get('PORT_BANNER');
    if (banner) {
      this.notes.add(
        'PORT_BANNER',
        banner.line,
        'PORT_BANNER has no equivalent: sentry-xdp never binds or answers the watched ports (it sees the packets in XDP), ' +
          'so there is no connection to send a banner on',
      );
    }
    const resolve = this.get('RESOLVE_HOST');
    if (resolve) {
      const on = atoi(resolve.value).n !== 0;
      if (on) {
        this.notes.add(
          'RESOLVE_HOST',
          resolve.line,
          'RESOLVE_HOST=1: names are looked up off the alert path (2 s timeout, cached); the first alert of a source shows its address',
        );
      }
      trailer.push(`# RESOLVE_HOST${at(resolve)}: names of sources in alert lines`, `resolve_host: ${on}`);
    }
    const history = this.get('HISTORY_FILE');
    if (history) {
      this.notes.add(
        'HISTORY_FILE',
        history.line,
        `HISTORY_FILE=${show(history.value)} has no equivalent: sentry-xdp keeps the history of bans in its journal (or Redis)`,
      );
    }
    const blocked = this.get('BLOCKED_FILE');
    if (blocked) {
      this.notes.add(
        'BLOCKED_FILE',
        blocked.line,
        `BLOCKED_FILE=${show(blocked.value)} has no equivalent: a ban is in force exactly while it is in the kernel's ban table, ` +
          'which sentry-xdp lists and expires itself (no .blocked files to flush)',
      );
    }
    return trailer;
  }
}

/** The parts of the YAML, in the order they are written. */
interface YamlParts {
  from: string;
  modes: PortsentryMode[];
  explicit: boolean;
  portLines: string[];
  advLines: string[];
  trig: Setting | undefined;
  trigger: number;
  blockLines: string[];
  allowLines: string[];
  hookLines: string[];
  trailer: string[];
  notes: ImportNote[];
}

function renderYaml(p: YamlParts): string {
  const modes = p.modes.length ? p.modes.join(', ') : '(none)';
  const out: string[] = [
    `# sentry-xdp configuration imported from ${oneLine(p.from)}`,
    '# by `sentry-xdp config import-portsentry`. The comment above each key names the PortSentry setting',
    '# (and its line) it came from; the notes at the end say what has no equivalent or was changed.',
    `# PortSentry modes: ${modes}${p.explicit ? ' (from --modes)' : ' (every mode the file configures; no --modes given)'}`,
    '',
    ...p.portLines,
    '',
    '# ADVANCED_* : advanced mode (atcp/audp) watches every port below tcp/udp that nothing listens on,',
    '# minus the excludes, in addition to tcp_ports/udp_ports',
    'advanced:',
    ...p.advLines,
    '',
    `# SCAN_TRIGGER${at(p.trig)}${p.trig ? '' : ' is not set'}: probes a source may send before the alarm; 0 reacts at once`,
    `scan_trigger: ${p.trigger}`,
    '# (sentry-xdp) probes count towards the trigger for this long; PortSentry never forgot a source',
    'scan_window: 60s',
    '',
    ...p.blockLines,
    '',
    "# (sentry-xdp) PortSentry's bans never expired; these do, and repeat offenders get longer ones",
    "# (escalation, up to 7d). For PortSentry's behaviour write: ban_ttl: permanent",
    'ban_ttl: 1h',
    '',
    ...p.allowLines,
    '',
    "# (sentry-xdp) also never ban this host's own addresses, gateways and resolvers (logged only);",
    '# PortSentry needed them in the ignore file',
    'never_ban:',
    '  auto: true',
    '',
    // a mapping of nothing but comments would be null, which the schema rejects
    ...(p.hookLines.some((l) => !l.trimStart().startsWith('#')) ? ['hooks:', ...p.hookLines] : [...p.hookLines.map((l) => l.trimStart()), 'hooks: {}']),
  ];
  if (p.trailer.length) out.push('', ...p.trailer);
  if (p.notes.length) {
    out.push('', '# Notes from the import:');
    for (const n of p.notes) out.push(`# - ${oneLine(`${n.line ? `${n.file}:${n.line}` : n.file}: ${n.message}`)}`);
  }
  return `${out.join('\n')}\n`;
}

/** Imports a portsentry.conf (and its ignore file) as a sentry.yaml. Throws SentryError('CONFIG') when the
 *  file holds no PortSentry setting at all, SentryError('USAGE') for an unknown mode. */
export function importPortsentry(input: ImportInput): ImportResult {
  const { conf, confName } = input;
  const ignoreName = input.ignoreName ?? 'the ignore file';
  const parsed = parsePortsentryConf(conf, confName);
  if (parsed.settings.size === 0) {
    throw new SentryError(
      'CONFIG',
      `${confName}: not a portsentry.conf (no PortSentry setting such as TCP_PORTS="..." found)`,
      'pass the file PortSentry reads, usually /etc/portsentry/portsentry.conf',
    );
  }
  const im = new Importer(parsed.settings, parsed.notes, confName, input.modes);
  im.modeNotes();
  const { trig, trigger } = im.trigger();
  const portLines: string[] = [];
  const advLines: string[] = [];
  for (const proto of ['tcp', 'udp'] as const) {
    portLines.push(...im.portList(proto));
    advLines.push(...im.advancedPorts(proto, trigger), ...im.advancedExclude(proto));
  }
  const blockLines = [...im.block('tcp'), ...im.block('udp')];
  im.banTtlNote();
  const allowLines = im.allow(input.ignore, ignoreName);
  const hookLines = im.hooks();
  const trailer = im.unmatched();
  const notes = sortNotes(im.notes.list, confName);
  const from = input.ignore !== undefined ? `${confName} and ${ignoreName}` : confName;
  const yaml = renderYaml({
    from,
    modes: im.modes,
    explicit: im.explicit,
    portLines,
    advLines,
    trig,
    trigger,
    blockLines,
    allowLines,
    hookLines,
    trailer,
    notes,
  });
  return { yaml, notes, modes: im.modes };
}

/** Conf notes first, then the ignore file's; within a file by line (0, the file as a whole, first). */
function sortNotes(list: ImportNote[], confName: string): ImportNote[] {
  return list
    .map((n, i) => ({ n, i }))
    .sort((a, b) => {
      const fa = a.n.file === confName ? 0 : 1;
      const fb = b.n.file === confName ? 0 : 1;
      return fa - fb || a.n.line - b.n.line || a.i - b.i;
    })
    .map((x) => x.n);
}
