/**
 * End to end: evasive nmap scans of the gateway's own address (two-namespace
 * lab, test/helpers/lab.ts). Tiny first fragments (-f, --mtu 8; RFC 1858) over
 * IPv4 and IPv6, and the ACK family (-sA, -sW, -sM) that slips past SYN and
 * flag-set detection: each must be alerted with its kind, get the scanner
 * banned, and teach nmap nothing. One lab per family; the scanner is unbanned
 * between scans, and must get through again before the next one.
 *
 * nmap 7.x refuses `-6 -f` ("fragmentation [is] not supported with IPv6") and
 * sends nothing; the IPv6 case then sends what it would have sent with
 * test/fixtures/lab/frag6_syn.py (SYNs whose first fragment holds 8 bytes of
 * the TCP header) and reads the answers the same way: open, closed, filtered.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  ATK4,
  ATK6,
  createLab,
  describeRun,
  GW4,
  GW6,
  requireTools,
  sleep,
  type Daemon,
  type DaemonEvent,
  type Lab,
  type NmapResult,
  type RunResult,
  type StatusJson,
} from '../helpers/lab.js';
import { FIXTURES } from '../helpers/gateway-lab.js';

const TCP_PORTS = '1,11,15,79,111';
const PORTS = TCP_PORTS.split(',').map(Number);

/** The default config, but bans long enough to outlast the test and a small watched port list. */
const CONFIG = [`tcp_ports: "${TCP_PORTS}"`, 'ban_ttl: 10m', ''].join('\n');

interface Scan {
  /** nmap's scan options (-6 is added for v6). */
  args: string[];
  v6: boolean;
  /** JSON kind of the alert. */
  kind: 'frag' | 'ack' | 'maimon';
  /** The status counter (probe<Kind>) that must move. */
  counter: string;
  /** nmap sends fragments: the evasionDropped counter must move too. */
  fragments: boolean;
}

const scanName = (s: Scan) => `nmap ${s.v6 ? '-6 ' : ''}${s.args.join(' ')}`;

const FRAG_SCANS: Scan[] = [
  { args: ['-sS', '-f'], v6: false, kind: 'frag', counter: 'probeFrag', fragments: true },
  { args: ['-sS', '--mtu', '8'], v6: false, kind: 'frag', counter: 'probeFrag', fragments: true },
  { args: ['-sF', '-f'], v6: false, kind: 'frag', counter: 'probeFrag', fragments: true },
  { args: ['-sN', '-f'], v6: false, kind: 'frag', counter: 'probeFrag', fragments: true },
  { args: ['-sS', '-f'], v6: true, kind: 'frag', counter: 'probeFrag', fragments: true },
];

const ACK_SCANS: Scan[] = [
  { args: ['-sA'], v6: false, kind: 'ack', counter: 'probeAck', fragments: false },
  { args: ['-sW'], v6: false, kind: 'ack', counter: 'probeAck', fragments: false },
  { args: ['-sM'], v6: false, kind: 'maimon', counter: 'probeMaimon', fragments: false },
];

type Event = DaemonEvent;

/** The daemon's JSON lines (from index `from` on); a line that is not JSON fails the test. */
const events = (d: Daemon, from = 0): Event[] => d.events(from);

const num = (s: StatusJson, name: string) => BigInt(s.counters[name] ?? 0);
const delta = (a: StatusJson, b: StatusJson, name: string) => num(b, name) - num(a, name);
const COUNTERS = ['alerts', 'bansAdded', 'probeFrag', 'probeAck', 'probeMaimon', 'evasionDropped', 'fragments', 'dropped'];
const deltas = (a: StatusJson, b: StatusJson) => COUNTERS.map((n) => `${n}+${delta(a, b, n)}`).join(' ');

/** What one scan learned, from nmap or from frag6_syn.py. */
interface Probed {
  run: RunResult;
  /** Every scanned port's state. */
  states: Map<string, number>;
  total: number;
  /** ICMP errors the target sent back (frag6_syn.py only): they tell a scanner the host is there. */
  icmpErrors: unknown[];
  tool: string;
}

const fromNmap = (nm: NmapResult): Probed => ({ run: nm.run, states: nm.states, total: nm.total, icmpErrors: [], tool: 'nmap' });

function report(p: Probed): string {
  return `${p.tool}: states ${JSON.stringify(Object.fromEntries(p.states))}, ICMP errors ${JSON.stringify(p.icmpErrors)}\n${describeRun(p.run)}`;
}

const NMAP_NO_V6_FRAG = /fragmentation (are|is) not supported with IPv6/;

/** frag6_syn.py from the attacker namespace against the gateway's IPv6 address. */
async function frag6Syn(lab: Lab): Promise<Probed> {
  const py = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const r = await lab.atk([py, join(FIXTURES, 'frag6_syn.py'), '--src', ATK6, '--dst', GW6, '--ports', TCP_PORTS, '--first', '8', '--wait', '1'], {
    timeoutMs: 20_000,
  });
  let out: { states?: Record<string, string>; icmp_errors?: unknown[] } = {};
  try {
    out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as typeof out;
  } catch {
    assert.fail(`frag6_syn.py printed no summary: ${describeRun(r)}`);
  }
  const states = new Map<string, number>();
  for (const st of Object.values(out.states ?? {})) states.set(st, (states.get(st) ?? 0) + 1);
  return { run: r, states, total: Object.keys(out.states ?? {}).length, icmpErrors: out.icmp_errors ?? [], tool: 'frag6_syn.py' };
}

/** The scan itself: nmap, or for `-6 -f`, which nmap refuses, frag6_syn.py. */
async function sendScan(lab: Lab, sc: Scan, t: TestContext): Promise<Probed> {
  const nm = await lab.nmap(sc.args, TCP_PORTS, sc.v6);
  if (sc.v6 && sc.args.includes('-f') && nm.run.code !== 0 && NMAP_NO_V6_FRAG.test(nm.run.stderr)) {
    t.diagnostic(`nmap refused \`${nm.run.cmd}\` and sent nothing (${nm.run.stderr.trim().split('\n')[0]}); sending its tiny IPv6 fragments with frag6_syn.py`);
    return frag6Syn(lab);
  }
  return fromNmap(nm);
}

/** One scan: alerted with its kind, the scanner banned, nmap blind; then unbanned and let through. Returns a timing line. */
async function scanIsCaught(t: TestContext, lab: Lab, d: Daemon, cfg: string, sc: Scan): Promise<string> {
  const what = scanName(sc);
  const atk = sc.v6 ? ATK6 : ATK4;
  const gw = sc.v6 ? GW6 : GW4;
  const s0 = await lab.status();
  const mark = d.lines.length;
  const t0 = Date.now();
  const nm = await sendScan(lab, sc, t);
  const took = Date.now() - t0;
  // while the ban lasts nothing gets through, ICMP included
  const blocked = await lab.ping(sc.v6);
  const ctx = async () => {
    const s = await lab.status().then(
      (x) => `status: ${JSON.stringify(x)}\ncounter deltas: ${deltas(s0, x)}`,
      (e: Error) => e.message,
    );
    return `${what}\n${report(nm)}\n${s}\n${d.output()}`;
  };
  try {
    await d.waitForLine(/"event":"alert"/, 5000, mark);
  } catch (e) {
    assert.fail(`${what} raised no alert\n${(e as Error).message}\n${await ctx()}`);
  }
  await sleep(300); // anything more would come with the same drain
  const evs = events(d, mark);
  const alerts = evs.filter((e) => e.event === 'alert');
  if (!alerts.length || alerts.some((a) => a.source !== atk || a.destination !== gw || a.kind !== sc.kind || a.proto !== 'tcp'))
    assert.fail(
      `${what}: every alert should name ${atk} -> ${gw}, tcp, kind ${sc.kind}; got ${JSON.stringify(alerts.map((a) => [a.source, a.destination, a.proto, a.port, a.kind]))}\n${await ctx()}`,
    );
  const bad = alerts.filter((a) => !PORTS.includes(a.port as number));
  if (bad.length) assert.fail(`${what}: alerts name ports nmap did not scan: ${JSON.stringify(bad)}\n${await ctx()}`);
  const banning = alerts.filter((a) => a.banned === true);
  const bans = evs.filter((e) => e.event === 'ban');
  if (banning.length !== 1 || bans.length !== 1 || bans[0]!.source !== atk)
    assert.fail(`${what}: expected one alert marked banned and one ban event for ${atk}; got ${banning.length} and ${JSON.stringify(bans)}\n${await ctx()}`);
  if (blocked.ok) assert.fail(`${what}: ping from the banned scanner got an answer\n${describeRun(blocked.run)}\n${await ctx()}`);

  // the scanner learned nothing: no port open, closed or unfiltered, not even an ICMP error saying the host is there
  if (nm.run.code !== 0 || nm.total !== PORTS.length) assert.fail(`${what}: ${nm.tool} failed or did not report on all ${PORTS.length} ports\n${await ctx()}`);
  const learned = [...nm.states.keys()].filter((st) => st !== 'filtered' && st !== 'open|filtered');
  if (learned.length) assert.fail(`${what}: ${nm.tool} learned something (${learned.join(', ')})\n${await ctx()}`);
  if (nm.icmpErrors.length) assert.fail(`${what}: the gateway answered with ICMP errors\n${await ctx()}`);

  const s1 = await lab.status();
  if (delta(s0, s1, sc.counter) < 1n) assert.fail(`${what}: the ${sc.counter} counter did not move\n${await ctx()}`);
  // the first fragment is dropped as an evasion fragment before its source is banned: proof nmap fragmented
  if (sc.fragments && delta(s0, s1, 'evasionDropped') < 1n) assert.fail(`${what}: no evasion fragment was dropped: did nmap fragment?\n${await ctx()}`);
  if (s1.bansInForce !== 1) assert.fail(`${what}: one ban should be in force, not ${s1.bansInForce}\n${await ctx()}`);

  const u = await lab.cli(['unban', atk, '--config', cfg]);
  if (u.code !== 0) assert.fail(`${what}: unban failed\n${describeRun(u)}\n${await ctx()}`);
  const through = await lab.pingGetsThrough(sc.v6);
  if (!through.ok) assert.fail(`${what}: after the unban the scanner should get through again\n${through.log}\n${await ctx()}`);
  return `${what} (${nm.tool}): ${took} ms, ${alerts.length} alert(s), ${deltas(s0, s1)}`;
}

for (const [family, scans] of [
  ['tiny fragments (-f, --mtu 8; IPv4 and IPv6)', FRAG_SCANS],
  ['the ACK family (-sA, -sW, -sM)', ACK_SCANS],
] as const) {
  test(`nmap scans by ${family} of the gateway are alerted with their kind, banned, and learn nothing`, { timeout: 90_000 }, async (t) => {
    requireTools('nmap', 'ping', 'nsenter', 'ip', 'nft');
    const lab = createLab(t);
    const cfg = lab.writeConfig('sentry.yaml', CONFIG);
    for (const v6 of [false, true]) {
      const p = await lab.pingGetsThrough(v6);
      assert.ok(p.ok, `the lab is broken: the attacker cannot ping${v6 ? '6' : ''} the gateway before any scan\n${p.log}`);
    }
    if (scans.some((sc) => sc.v6 && sc.args.includes('-f'))) {
      // control, before sentry-xdp runs: the gateway's own stack receives the tiny IPv6
      // fragments and answers each with Parameter Problem, code 3 (RFC 8200 4.5)
      const c = await frag6Syn(lab);
      const code3 = c.icmpErrors.filter((e) => (e as { type?: number; code?: number }).type === 4 && (e as { code?: number }).code === 3).length;
      assert.equal(
        code3,
        PORTS.length,
        `control: without sentry-xdp the gateway should answer each tiny-fragment SYN with ICMPv6 Parameter Problem code 3\n${report(c)}`,
      );
    }
    const d = await lab.startDaemon({ config: cfg, json: true });
    const lines: string[] = [];
    for (const sc of scans) lines.push(await scanIsCaught(t, lab, d, cfg, sc));
    const s = await lab.status();
    assert.equal(
      s.counters.alerts,
      events(d).filter((e) => e.event === 'alert').length,
      `the alerts counter should match the alert lines\n${JSON.stringify(s)}\n${d.output()}`,
    );
    assert.equal(d.exited, false, `the daemon should still run\n${d.output()}`);
    for (const l of lines) t.diagnostic(l);
  });
}
