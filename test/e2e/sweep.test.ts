/**
 * End to end, sweeps on a routed gateway (test/helpers/gateway-lab.ts): one
 * source reaching `sweep_trigger` hosts of a protected network within the scan
 * window (SYN, UDP or ping, any port) is banned, with one alert, before it has
 * mapped the network; and the everyday traffic of a busy network (a thousand
 * outside clients of the LAN's services, datagrams and pings fragmented on the
 * way, IPv4 and IPv6) reaches no such count and never trips the
 * fragment-evasion checks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import {
  describeRun,
  parseNmap,
  requireTools,
  sleep,
  type Daemon,
  type DaemonEvent,
  type NmapResult,
  type RunResult,
  type StatusJson,
} from '../helpers/lab.js';
import { createGatewayLab, LAN, OUTSIDE, type ClientResult, type GatewayLab, labProtectYaml, LAB_PORTS_YAML } from '../helpers/gateway-lab.js';

const PORTS_YAML = LAB_PORTS_YAML;
const PROTECT_YAML = labProtectYaml();

/** The SMB farm: 17 LAN hosts listening on TCP 445, listed as a service (not a tripwire: only a sweep gives the scanner away). */
const FARM = Array.from({ length: 17 }, (_, i) => `198.19.0.${101 + i}`);
const FARM_SERVICE = '198.19.0.96/27:445/tcp';
const SWEEP_TRIGGER = 8;

/** The outside clients: 1,000 addresses of 198.18.4.0/22 (198.18.4.1 ... 198.18.7.232). */
const CLIENT_NET = '198.18.4.0/22';
const CLIENTS = 1000;
const clientAddr = (i: number) => `198.18.${4 + ((i + 1) >> 8)}.${(i + 1) & 255}`; // i = 0 ... CLIENTS-1
const range = (from: number, to: number) => `${clientAddr(from)}-${clientAddr(to)}`;

/** Services for the fragmented traffic: UDP echo (port 7, not watched) on the gateway and on the LAN's IPv6 server. */
const ECHO_PORT = 7;

type Event = DaemonEvent;
type Ctx = () => Promise<string>;

/** The daemon's JSON lines (from index `from` on); a line that is not JSON fails the test. */
const events = (d: Daemon, from = 0): Event[] => d.events(from);

async function expectEqual(actual: unknown, expected: unknown, what: string, ctx: Ctx): Promise<void> {
  if (!isDeepStrictEqual(actual, expected)) assert.deepEqual(actual, expected, `${what}\n${await ctx()}`);
}

async function expectOk(ok: boolean, what: string, ctx: Ctx): Promise<void> {
  if (!ok) assert.fail(`${what}\n${await ctx()}`);
}

/** Everything worth seeing when a gateway test fails. */
function context(lab: GatewayLab, d: Daemon | undefined, extra: () => string = () => ''): Ctx {
  return async () => {
    const s = await lab.status().then(
      (x) => JSON.stringify(x),
      (e: Error) => e.message,
    );
    return `${extra()}\nstatus: ${s}\n${d ? d.output() : '(no daemon)'}\n${await lab.conntrack()}\n${lab.servicesReport()}`;
  };
}

const num = (s: StatusJson, name: string) => BigInt(s.counters[name] ?? 0);
const counters = (s: StatusJson, ...names: string[]) => names.map((n) => `${n}=${s.counters[n] ?? '?'}`).join(' ');

function nmapReport(nm: NmapResult): string {
  return `nmap states ${JSON.stringify(Object.fromEntries(nm.states))} listed ${JSON.stringify(nm.listed)}\n${describeRun(nm.run)}`;
}

/** One way to sweep the farm: the scan, and what nmap learns from it. */
interface Sweep {
  what: string;
  proto: 'tcp' | 'udp' | 'icmp';
  /** The port swept (0 for ICMP echo). */
  port: number;
  /** The alert's `scan` text. */
  scan: string;
  /** Run the daemon with PortSentry-style lines instead of JSON: this is the alert line it must print. */
  textLine?: string;
}

const SWEEPS: Sweep[] = [
  { what: 'SYN sweep of TCP 445 (nmap -sS -p 445)', proto: 'tcp', port: 445, scan: 'TCP sweep' },
  {
    what: 'UDP sweep of UDP 7 (nmap -sU -p 7; PortSentry-style output)',
    proto: 'udp',
    port: 7,
    scan: 'UDP sweep',
    textLine: `attackalert: UDP sweep from host: ${OUTSIDE.scanner}/${OUTSIDE.scanner} to UDP port: 7 (${SWEEP_TRIGGER} hosts)`,
  },
  { what: 'ping sweep (nmap -sn -PE)', proto: 'icmp', port: 0, scan: 'ICMP echo sweep' },
];

/** The farm hosts nmap learned about: the port open, or (ping sweep) the host up. */
function learnedHosts(nm: NmapResult, sw: Sweep): string[] {
  const hosts: string[] = [];
  for (const h of nm.run.stdout.split(/<host[\s>]/).slice(1)) {
    const addr = /<address addr="([^"]+)"/.exec(h)?.[1];
    const found =
      sw.proto === 'icmp' ? /<status state="up"/.test(h) : new RegExp(`<port protocol="${sw.proto}" portid="${sw.port}"><state state="open"`).test(h);
    if (addr && found) hosts.push(addr);
  }
  return hosts;
}

/** The sweep, from `src` (an outside address) over the farm. */
async function sweepFarm(lab: GatewayLab, src: string, sw: Sweep): Promise<NmapResult> {
  if (sw.proto === 'tcp') return lab.nmap(src, ['-sS'], String(sw.port), FARM);
  if (sw.proto === 'udp') return lab.nmap(src, ['-sU'], String(sw.port), FARM);
  // lab.nmap adds -Pn (no host discovery), which is the whole of a ping sweep: build it here
  const argv = ['nmap', ...(src !== OUTSIDE.scanner ? ['-S', src, '-e', lab.outIf] : []), '-sn', '-PE', '-n', '-T5', '--max-retries', '1'];
  argv.push('--host-timeout', '30s', '--initial-rtt-timeout', '100ms', '--max-rtt-timeout', '200ms', '-oX', '-', ...FARM);
  return parseNmap(await lab.outside(argv, { timeoutMs: 60_000 }));
}

function clientReport(c: ClientResult): string {
  return `client summary ${JSON.stringify(c.summary)}\n${describeRun(c.run)}`;
}

async function expectAllAnswered(c: ClientResult, count: number, what: string, ctx: Ctx): Promise<void> {
  await expectOk(c.summary.answered === count && c.summary.failed === 0, `${what}: ${c.summary.answered} of ${count} answered\n${clientReport(c)}`, ctx);
}

for (const sw of SWEEPS) {
  test(
    `1. a ${sw.what} of ${FARM.length} LAN servers is stopped at sweep_trigger ${SWEEP_TRIGGER}: one sweep alert, the scanner banned, at most ${SWEEP_TRIGGER} hosts learned`,
    { timeout: 60_000 },
    async (t) => {
      requireTools('nft', 'nmap', 'ping', 'conntrack');
      const lab = await createGatewayLab(t);
      await lab.addLanHosts(FARM);
      await lab.startScript('lan', 'echo_server.py', ['--addr', FARM.join(','), '--tcp', '445', '--udp', '7']);
      const cfg = lab.writeConfig('sweep.yaml', [...PORTS_YAML, `sweep_trigger: ${SWEEP_TRIGGER}`, ...PROTECT_YAML, `    - "${FARM_SERVICE}"`, ''].join('\n'));

      // control, before sentry-xdp runs: from another outside address, nmap finds the whole farm
      const control = await sweepFarm(lab, OUTSIDE.client, sw);
      const seen = learnedHosts(control, sw);
      await expectEqual(
        seen.length,
        FARM.length,
        `control: without sentry-xdp nmap should find all ${FARM.length} farm hosts\n${nmapReport(control)}`,
        context(lab, undefined),
      );

      const json = sw.textLine === undefined;
      const d = await lab.startDaemon({ config: cfg, json });
      const mark = d.lines.length;
      const t0 = Date.now();
      const nm = await sweepFarm(lab, OUTSIDE.scanner, sw);
      const took = Date.now() - t0;
      const ping = await lab.outside(['ping', '-4', '-n', '-c1', '-W1', '-I', OUTSIDE.scanner, LAN.server], { timeoutMs: 10_000 });
      const ctx = context(lab, d, () => `${nmapReport(nm)}\nping from the scanner: ${describeRun(ping)}`);
      await expectEqual(nm.run.code, 0, 'nmap failed', ctx);
      try {
        await d.waitForLine(json ? /"event":"ban"/ : /^attackalert: Host .* has been blocked/, 5000, mark);
      } catch (e) {
        assert.fail(`the sweep got nobody banned\n${(e as Error).message}\n${await ctx()}`);
      }
      await sleep(500); // anything more would come with the same drain

      const learned = learnedHosts(nm, sw);
      await expectOk(
        learned.length <= SWEEP_TRIGGER,
        `nmap learned ${learned.length} hosts (${learned.join(' ')}); at most ${SWEEP_TRIGGER} may answer before the ban`,
        ctx,
      );
      let named = '';
      if (json) {
        const evs = events(d, mark);
        const alerts = evs.filter((e) => e.event === 'alert');
        await expectEqual(alerts.length, 1, 'exactly one alert for the sweep', ctx);
        const a = alerts[0]!;
        await expectEqual(
          {
            source: a.source,
            proto: a.proto,
            port: a.port,
            kind: a.kind,
            scan: a.scan,
            probes: a.probes,
            banned: a.banned,
            possiblySpoofed: a.possiblySpoofed,
          },
          {
            source: OUTSIDE.scanner,
            proto: sw.proto,
            port: sw.port,
            kind: 'sweep',
            scan: sw.scan,
            probes: SWEEP_TRIGGER,
            banned: true,
            possiblySpoofed: false,
          },
          `the alert names the scanner, a ${sw.scan} reaching ${SWEEP_TRIGGER} hosts, and the ban`,
          ctx,
        );
        await expectOk(FARM.includes(a.destination as string), `the alert's destination ${String(a.destination)} is not a farm host`, ctx);
        const bans = evs.filter((e) => e.event === 'ban');
        await expectEqual(
          bans.map((b) => b.source),
          [OUTSIDE.scanner],
          'one ban event, for the scanner',
          ctx,
        );
        named = `${String(a.destination)} ${String(a.proto)}/${String(a.port)}`;
      } else {
        const lines = d.matching(/^attackalert: /, mark);
        await expectEqual(
          lines.map((l) => l.replace(/until \S+\)$/, 'until T)')),
          [sw.textLine, `attackalert: Host ${OUTSIDE.scanner} has been blocked via XDP drop (ban 10m, until T)`],
          'one PortSentry-style alert line for the sweep and one ban line',
          ctx,
        );
        named = lines[0]!;
      }
      const list = await lab.bans(['--config', cfg]);
      await expectEqual(
        list.list.map((b) => b.target),
        [OUTSIDE.scanner],
        `the scanner and only the scanner is banned\n${describeRun(list.run)}`,
        ctx,
      );
      await expectOk(ping.code !== 0, 'the banned scanner still gets an answer to a ping through the gateway', ctx);

      const s = await lab.status();
      await expectEqual(s.counters.alerts, 1, 'one alert counted', ctx);
      await expectEqual(
        [s.counters.probeSyn, s.counters.probeUdp],
        [0, 0],
        'no SYN or UDP probe (445/tcp on the farm is a listed service, 7/udp is not watched): only the sweep gives the scanner away',
        ctx,
      );
      await expectOk(
        num(s, 'probeSweep') === BigInt(SWEEP_TRIGGER),
        `probe_sweep should count the ${SWEEP_TRIGGER} hosts reached (${counters(s, 'probeSweep', 'service')})`,
        ctx,
      );

      // the ban is the scanner's alone: another outside client still reaches the farm
      const other = await lab.client('outside', { proto: 'tcp', dst: FARM[0]!, port: 445, count: 3, src: OUTSIDE.client });
      await expectAllAnswered(other, 3, `TCP connections from ${OUTSIDE.client} to ${FARM[0]}:445 after the ban`, ctx);
      t.diagnostic(
        `control: ${seen.length} hosts found; with sentry-xdp (${took} ms) ${learned.length} (${learned.join(' ')}); the alert: ${named}; ${counters(s, 'alerts', 'probeSweep', 'service', 'dropped', 'bansAdded')}`,
      );
    },
  );
}

/** ping -s SIZE from the outside client: every echo answered. */
async function bigPing(lab: GatewayLab, dst: string, size: number, count: number): Promise<RunResult> {
  return lab.outside(['ping', '-4', '-n', '-c', String(count), '-i', '0.2', '-W', '2', '-s', String(size), '-I', OUTSIDE.client, dst], { timeoutMs: 20_000 });
}

test(
  `2. no false positive with sweeps on (default ${16}): ${CLIENTS} outside clients of the LAN's services, and datagrams and pings fragmented on the way (IPv4, IPv6 at MTU 1280), all answered, no alert, no ban`,
  { timeout: 60_000 },
  async (t) => {
    requireTools('nft', 'ping', 'conntrack');
    const lab = await createGatewayLab(t);
    await lab.addOutsideClients(
      CLIENT_NET,
      Array.from({ length: CLIENTS }, (_, i) => clientAddr(i)),
    );
    // IPv6 MTU 1280 on both links (the IPv4 MTU stays 1500): a 1,400-byte datagram leaves its sender in two fragments
    for (const r of await Promise.all([
      lab.outside(['sysctl', '-q', '-w', `net.ipv6.conf.${lab.outIf}.mtu=1280`]),
      lab.gw(['sysctl', '-q', '-w', `net.ipv6.conf.${lab.gwOutIf}.mtu=1280`]),
      lab.gw(['sysctl', '-q', '-w', `net.ipv6.conf.${lab.gwLanIf}.mtu=1280`]),
      lab.lan(['sysctl', '-q', '-w', `net.ipv6.conf.${lab.lanIf}.mtu=1280`]),
    ]))
      assert.equal(r.code, 0, `setting the IPv6 MTU failed: ${describeRun(r)}`);
    await Promise.all([
      lab.startScript('gw', 'echo_server.py', ['--addr', `${OUTSIDE.gw},${OUTSIDE.gw6}`, '--udp', String(ECHO_PORT)]),
      lab.startScript('lan', 'echo_server.py', ['--addr', LAN.server6, '--udp', String(ECHO_PORT)]),
    ]);
    const cfg = lab.writeConfig('protect.yaml', [...PORTS_YAML, ...PROTECT_YAML, ''].join('\n'));
    const d = await lab.startDaemon({ config: cfg, json: true });
    let extra = '';
    const ctx = context(lab, d, () => extra);

    const t0 = Date.now();
    // every client talks to the IMAP server; 400 of them also to SNMP, 400 others also to DNS
    const [imap, snmp, dns] = await Promise.all([
      lab.client('outside', { proto: 'tcp', dst: LAN.server, port: 143, count: CLIENTS, srcRange: range(0, CLIENTS - 1) }),
      lab.client('outside', { proto: 'udp', dst: LAN.server, port: 161, count: 400, srcRange: range(0, 399) }),
      lab.client('outside', { proto: 'udp', dst: LAN.dns, port: 53, count: 400, srcRange: range(600, 999), dns: true }),
    ]);
    const clientsMs = Date.now() - t0;
    await expectAllAnswered(imap, CLIENTS, `TCP connections to ${LAN.server}:143 from ${CLIENTS} clients`, ctx);
    await expectEqual(imap.summary.source_addresses, CLIENTS, `the IMAP connections should come from ${CLIENTS} addresses\n${clientReport(imap)}`, ctx);
    await expectAllAnswered(snmp, 400, `UDP exchanges with ${LAN.server}:161`, ctx);
    await expectAllAnswered(dns, 400, `DNS queries to ${LAN.dns}:53`, ctx);

    // legitimately fragmented traffic, to the LAN and to the gateway itself
    const t1 = Date.now();
    const [udpLan, udpGw, udp6Lan, udp6Gw, pingLan, pingGw] = await Promise.all([
      lab.client('outside', { proto: 'udp', dst: LAN.server, port: 161, count: 3, src: OUTSIDE.client, size: 4000 }),
      lab.client('outside', { proto: 'udp', dst: OUTSIDE.gw, port: ECHO_PORT, count: 3, src: OUTSIDE.client, size: 4000 }),
      lab.client('outside', { proto: 'udp', dst: LAN.server6, port: ECHO_PORT, count: 3, size: 1400 }),
      lab.client('outside', { proto: 'udp', dst: OUTSIDE.gw6, port: ECHO_PORT, count: 3, size: 1400 }),
      bigPing(lab, LAN.server, 3000, 3),
      bigPing(lab, OUTSIDE.gw, 3000, 3),
    ]);
    const fragMs = Date.now() - t1;
    extra = [udpLan, udpGw, udp6Lan, udp6Gw].map(clientReport).join('\n') + `\n${describeRun(pingLan)}\n${describeRun(pingGw)}`;
    await expectAllAnswered(udpLan, 3, `4,000-byte datagrams to ${LAN.server}:161`, ctx);
    await expectAllAnswered(udpGw, 3, `4,000-byte datagrams to ${OUTSIDE.gw}:${ECHO_PORT}`, ctx);
    await expectAllAnswered(udp6Lan, 3, `1,400-byte datagrams to [${LAN.server6}]:${ECHO_PORT} at IPv6 MTU 1280`, ctx);
    await expectAllAnswered(udp6Gw, 3, `1,400-byte datagrams to [${OUTSIDE.gw6}]:${ECHO_PORT} at IPv6 MTU 1280`, ctx);
    await expectEqual(pingLan.code, 0, `ping -s 3000 ${LAN.server}: every echo answered`, ctx);
    await expectEqual(pingGw.code, 0, `ping -s 3000 ${OUTSIDE.gw}: every echo answered`, ctx);

    await sleep(1000); // let the daemon drain anything the kernel still has for it
    const s = await lab.status();
    const alerts = events(d)
      .filter((e) => e.event === 'alert')
      .map((e) => `${e.source} -> ${e.destination} ${e.proto}/${e.port} (${e.kind}, probes ${e.probes})`);
    await expectEqual(alerts, [], 'the daemon alerted', ctx);
    await expectEqual(events(d).filter((e) => e.event === 'ban' || e.event === 'not_blocked').length, 0, 'ban or not_blocked events', ctx);
    await expectEqual(s.counters.alerts, 0, 'the alerts counter should be 0', ctx);
    await expectEqual(s.bansInForce, 0, 'nobody should be banned', ctx);
    await expectEqual(
      [s.counters.probeFrag, s.counters.evasionDropped, s.counters.probeSweep === undefined],
      [0, 0, false],
      'no fragment taken for an evasion (probe_frag, evasion_dropped) and the sweep counter present',
      ctx,
    );
    // later fragments passed: 2 of each 4,000-byte datagram (MTU 1500) and 3,008-byte echo, 1 of each 1,400-byte IPv6 datagram
    const laterFragments = 2 * 6 + 2 * 6 + 1 * 6;
    await expectOk(
      num(s, 'fragments') >= BigInt(laterFragments),
      `at least ${laterFragments} later fragments should have passed (${counters(s, 'fragments', 'passed', 'dropped')})`,
      ctx,
    );
    await expectEqual(d.exited, false, 'the daemon should still run', ctx);
    t.diagnostic(
      `clients ${clientsMs} ms (IMAP ${imap.summary.elapsed_ms} ms, SNMP ${snmp.summary.elapsed_ms} ms, DNS ${dns.summary.elapsed_ms} ms), fragmented traffic ${fragMs} ms; ${counters(s, 'seen', 'passed', 'dropped', 'fragments', 'service', 'probeSweep', 'conntrack', 'localSocket', 'notProtected')}`,
    );
  },
);
