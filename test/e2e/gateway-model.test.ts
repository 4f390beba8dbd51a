/**
 * End to end, the gateway model (DESIGN.md "The gateway model"): sentry-xdp on
 * a routed gateway between an outside network and a server LAN. Clients of the
 * LAN's services and replies landing on watched ephemeral ports are never
 * probes; a forged probe bearing a live peer's address is alerted as possibly
 * spoofed and never banned; scans of the gateway and of the protected LAN are
 * caught and learn nothing. Each test builds its own lab (test/helpers/gateway-lab.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { describeRun, requireTools, sleep, type Daemon, type DaemonEvent, type NmapResult, type StatusJson } from '../helpers/lab.js';
import { createGatewayLab, LAN, OUTSIDE, type ClientResult, type GatewayLab, labProtectYaml } from '../helpers/gateway-lab.js';

const TCP_PORTS = '1,11,143,445';
const UDP_PORTS = '161,32770-32774';
const SPORTS = '32770-32774';

const PORTS_YAML = [`tcp_ports: "${TCP_PORTS}"`, `udp_ports: "${UDP_PORTS}"`, 'ban_ttl: 10m'];
const PROTECT_YAML = labProtectYaml();
const protectConfig = () => [...PORTS_YAML, ...PROTECT_YAML, ''].join('\n');
const noProtectConfig = () => [...PORTS_YAML, ''].join('\n');

type Event = DaemonEvent;
type Ctx = () => Promise<string>;

/** The daemon's JSON lines (from index `from` on); a line that is not JSON fails the test. */
const events = (d: Daemon, from = 0): Event[] => d.events(from);

const alertsOf = (d: Daemon, from = 0) => events(d, from).filter((e) => e.event === 'alert');

/** assert.deepEqual whose context (status, daemon output, conntrack) is gathered only when it fails. */
async function expectEqual(actual: unknown, expected: unknown, what: string, ctx: Ctx): Promise<void> {
  if (!isDeepStrictEqual(actual, expected)) assert.deepEqual(actual, expected, `${what}\n${await ctx()}`);
}

async function expectOk(ok: boolean, what: string, ctx: Ctx): Promise<void> {
  if (!ok) assert.fail(`${what}\n${await ctx()}`);
}

/** Everything worth seeing when a gateway test fails. */
function context(lab: GatewayLab, d: Daemon, extra: () => string = () => ''): Ctx {
  return async () => {
    const s = await lab.status().then(
      (x) => JSON.stringify(x),
      (e: Error) => e.message,
    );
    return `${extra()}\nstatus: ${s}\n${d.output()}\n${await lab.conntrack()}\n${lab.servicesReport()}`;
  };
}

function counters(s: StatusJson, ...names: string[]): string {
  return names.map((n) => `${n}=${s.counters[n] ?? '?'}`).join(' ');
}

const num = (s: StatusJson, name: string) => BigInt(s.counters[name] ?? 0);

function clientReport(c: ClientResult): string {
  return `client summary ${JSON.stringify(c.summary)}\n${describeRun(c.run)}`;
}

/** All `count` exchanges answered, or a message naming what failed. */
async function expectAllAnswered(c: ClientResult, count: number, what: string, ctx: Ctx): Promise<void> {
  await expectOk(c.summary.answered === count && c.summary.failed === 0, `${what}: ${c.summary.answered} of ${count} answered\n${clientReport(c)}`, ctx);
}

/** Lets the daemon drain anything the kernel still has for it. */
const settle = () => sleep(1000);

/** The everyday traffic of test 1: outside clients of the LAN's services. */
async function lanServiceTraffic(lab: GatewayLab, ctx: Ctx): Promise<void> {
  const [imap4, imap6, smb, snmp] = await Promise.all([
    lab.client('outside', { proto: 'tcp', dst: LAN.server, port: 143, count: 50, src: OUTSIDE.client }),
    lab.client('outside', { proto: 'tcp', dst: LAN.server6, port: 143, count: 5 }),
    lab.client('outside', { proto: 'tcp', dst: LAN.server, port: 445, count: 5, src: OUTSIDE.client }),
    lab.client('outside', { proto: 'udp', dst: LAN.server, port: 161, count: 200, src: OUTSIDE.client }),
  ]);
  await expectAllAnswered(imap4, 50, `TCP connections to ${LAN.server}:143`, ctx);
  await expectAllAnswered(imap6, 5, `TCP connections to [${LAN.server6}]:143`, ctx);
  await expectAllAnswered(smb, 5, `TCP connections to ${LAN.server}:445`, ctx);
  await expectAllAnswered(snmp, 200, `UDP exchanges with ${LAN.server}:161`, ctx);
}

/** The LAN client's queries to the outside resolver, from source ports cycling through the watched 32770-32774. */
function resolverQueries(lab: GatewayLab, count: number, more: { intervalMs?: number; timeoutS?: number } = {}): Promise<ClientResult> {
  return lab.client('lan', { proto: 'udp', dst: OUTSIDE.resolver, port: 53, count, src: LAN.client, sportRange: SPORTS, dns: true, timeoutS: 1, ...more });
}

/** No alert, no ban, the daemon alive: the assertions shared by tests 1-3 and 6. */
async function expectNoAlertNoBan(lab: GatewayLab, d: Daemon, what: string): Promise<StatusJson> {
  await settle();
  const s = await lab.status();
  const ctx = context(lab, d);
  const alerts = alertsOf(d).map((a) => `${a.source} -> ${a.destination} ${a.proto}/${a.port} (${a.kind})`);
  await expectEqual(alerts, [], `${what}: the daemon alerted`, ctx);
  await expectEqual(events(d).filter((e) => e.event === 'ban' || e.event === 'not_blocked').length, 0, `${what}: ban or not_blocked events`, ctx);
  await expectEqual(s.counters.alerts, 0, `${what}: the alerts counter should be 0`, ctx);
  await expectEqual(s.bansInForce, 0, `${what}: nobody should be banned`, ctx);
  await expectEqual(d.exited, false, 'the daemon should still run', ctx);
  return s;
}

test("1. clients of the protected LAN's listed services (TCP 143 over v4 and v6, 445, UDP 161) raise no alert and no ban", { timeout: 60_000 }, async (t) => {
  requireTools('nft', 'conntrack');
  const lab = await createGatewayLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('protect.yaml', protectConfig()), json: true });
  const ctx = context(lab, d);
  await lanServiceTraffic(lab, ctx);
  const s = await expectNoAlertNoBan(lab, d, 'clients of listed services');
  // the packets took the gateway model's path: probe-shaped, to a protected network, a listed service
  await expectOk(
    num(s, 'service') >= 50n + 5n + 5n + 200n,
    `every SYN to 143/445 and datagram to 161 should count as a listed service (${counters(s, 'service', 'notProtected', 'conntrack')})`,
    ctx,
  );
  t.diagnostic(`counters: ${counters(s, 'passed', 'service', 'notProtected', 'conntrack', 'localSocket')}`);
});

for (const masquerade of [false, true]) {
  const variant = masquerade ? 'with masquerade' : 'without masquerade';
  test(
    `2. a LAN client's 3000 queries to the outside resolver from source ports ${SPORTS} are all answered, nobody is banned, no alert (${variant})`,
    { timeout: 60_000 },
    async (t) => {
      requireTools('nft', 'conntrack');
      const lab = await createGatewayLab(t, { masquerade });
      const d = await lab.startDaemon({ config: lab.writeConfig('protect.yaml', protectConfig()), json: true });
      const ctx = context(lab, d);
      const q = await resolverQueries(lab, 3000);
      await expectAllAnswered(q, 3000, `queries to ${OUTSIDE.resolver}:53 (${variant})`, ctx);
      await expectEqual(q.summary.source_ports, 5, `the queries should use the 5 source ports ${SPORTS}\n${clientReport(q)}`, ctx);
      const s = await expectNoAlertNoBan(lab, d, `resolver queries (${variant})`);
      // the replies landed on watched ports of a protected destination (the LAN client, or with
      // masquerade the gateway itself) and conntrack recognised them
      await expectOk(
        num(s, 'conntrack') >= 3000n,
        `every reply should be recognised by conntrack (${counters(s, 'conntrack', 'localSocket', 'notProtected', 'probeUdp')})`,
        ctx,
      );
      t.diagnostic(`client ${q.summary.elapsed_ms} ms; counters: ${counters(s, 'passed', 'conntrack', 'localSocket', 'notProtected')}`);
    },
  );
}

for (const masquerade of [false, true]) {
  const variant = masquerade ? 'with masquerade' : 'without masquerade';
  test(`3. without a protect key, the LAN's clients and the resolver queries raise no alert at all (${variant})`, { timeout: 60_000 }, async (t) => {
    requireTools('nft', 'conntrack');
    const lab = await createGatewayLab(t, { masquerade });
    const d = await lab.startDaemon({ config: lab.writeConfig('plain.yaml', noProtectConfig()), json: true });
    const ctx = context(lab, d);
    await lanServiceTraffic(lab, ctx);
    const q = await resolverQueries(lab, 3000);
    await expectAllAnswered(q, 3000, `queries to ${OUTSIDE.resolver}:53 (${variant})`, ctx);
    const s = await expectNoAlertNoBan(lab, d, `no protect key (${variant})`);
    await expectOk(
      num(s, 'notProtected') > 0n,
      `forwarded probe-shaped packets should count as not protected (${counters(s, 'notProtected', 'conntrack', 'service')})`,
      ctx,
    );
    t.diagnostic(`counters: ${counters(s, 'passed', 'notProtected', 'conntrack', 'localSocket', 'service')}`);
  });
}

test(
  "4. a forged SYN bearing a live peer's address (the resolver) is alerted as possibly spoofed, never banned; its queries go on",
  { timeout: 60_000 },
  async (t) => {
    requireTools('nft', 'conntrack', 'hping3');
    const lab = await createGatewayLab(t);
    const cfg = lab.writeConfig('protect.yaml', protectConfig());
    const d = await lab.startDaemon({ config: cfg, json: true });
    let forged = '';
    const ctx = context(lab, d, () => forged);

    const before = await resolverQueries(lab, 50);
    await expectAllAnswered(before, 50, 'queries before the forged SYN', ctx);
    await sleep(500); // the live-peer follower sees the answered flows
    const mark = d.lines.length;
    // ~2 s of queries while the SYN is forged; a few timeouts in a row end them (a banned resolver)
    const during = resolverQueries(lab, 200, { intervalMs: 10, timeoutS: 0.5 });
    await sleep(500);
    const h = await lab.outside(['hping3', '-c', '1', '-S', '-p', '1', '-a', OUTSIDE.resolver, OUTSIDE.gw], { timeoutMs: 10_000 });
    forged = `forged SYN: ${describeRun(h)}`;
    await expectOk(!h.timedOut, 'hping3 hung', ctx);
    const q = await during;
    try {
      await d.waitForLine(/"event":"alert"/, 5000, mark);
    } catch (e) {
      assert.fail(`the forged SYN raised no alert\n${(e as Error).message}\n${await ctx()}`);
    }
    await settle();
    const after = await resolverQueries(lab, 50, { timeoutS: 0.5 });

    const evs = events(d, mark);
    const alerts = evs.filter((e) => e.event === 'alert');
    await expectEqual(alerts.length, 1, 'exactly one alert for the forged SYN', ctx);
    const a = alerts[0]!;
    await expectEqual(
      { source: a.source, destination: a.destination, proto: a.proto, port: a.port, kind: a.kind },
      { source: OUTSIDE.resolver, destination: OUTSIDE.gw, proto: 'tcp', port: 1, kind: 'syn' },
      'the alert names the forged SYN',
      ctx,
    );
    await expectEqual(
      { possiblySpoofed: a.possiblySpoofed, banned: a.banned },
      { possiblySpoofed: true, banned: false },
      'the alert should be flagged possibly_spoofed, and the live peer not banned',
      ctx,
    );
    const nb = evs.filter((e) => e.event === 'not_blocked').map((e) => ({ source: e.source, reason: e.reason, possiblySpoofed: e.possiblySpoofed }));
    await expectEqual(nb, [{ source: OUTSIDE.resolver, reason: 'live-connection', possiblySpoofed: true }], 'one not_blocked event (live connection)', ctx);
    await expectEqual(evs.filter((e) => e.event === 'ban').length, 0, 'no ban event', ctx);

    const bans = await lab.bans(['--config', cfg]);
    await expectOk(!bans.list.some((b) => b.target === OUTSIDE.resolver), `the resolver is banned\n${describeRun(bans.run)}`, ctx);
    const s = await lab.status();
    await expectEqual(s.bansInForce, 0, 'no ban in force', ctx);
    await expectEqual(s.counters.alerts, 1, 'one alert counted', ctx);
    await expectEqual(s.counters.livePeer, 1, 'the kernel counted one live-peer alert', ctx);

    await expectAllAnswered(q, 200, 'queries while the SYN was forged', ctx);
    await expectAllAnswered(after, 50, 'queries after the forged SYN', ctx);
    t.diagnostic(`${d.lines.slice(mark).join(' | ')}; counters: ${counters(s, 'alerts', 'livePeer', 'bansAdded', 'conntrack')}`);
  },
);

interface Scan {
  flag: string;
  proto: 'tcp' | 'udp';
  ports: string;
  kind: string;
}

const SCANS: Scan[] = [
  { flag: '-sS', proto: 'tcp', ports: '1,11,143', kind: 'syn' },
  { flag: '-sF', proto: 'tcp', ports: '1,11,143', kind: 'fin' },
  { flag: '-sN', proto: 'tcp', ports: '1,11,143', kind: 'null' },
  { flag: '-sX', proto: 'tcp', ports: '1,11,143', kind: 'xmas' },
  { flag: '-sU', proto: 'udp', ports: '161', kind: 'udp' },
];

function nmapReport(nm: NmapResult): string {
  return `nmap states ${JSON.stringify(Object.fromEntries(nm.states))} listed ${JSON.stringify(nm.listed)}\n${describeRun(nm.run)}`;
}

for (const [target, what] of [
  [OUTSIDE.gw, "the gateway's own address"],
  [LAN.unused, 'a protected LAN address with no service'],
] as const) {
  test(`5. nmap -sS/-sF/-sN/-sX/-sU of ${what} (${target}): one alert per scan naming it, nmap learns nothing`, { timeout: 90_000 }, async (t) => {
    requireTools('nft', 'nmap');
    const lab = await createGatewayLab(t);
    const cfg = lab.writeConfig('protect.yaml', protectConfig());
    const d = await lab.startDaemon({ config: cfg, json: true });
    const timings: string[] = [];
    for (const sc of SCANS) {
      const mark = d.lines.length;
      const t0 = Date.now();
      const nm = await lab.nmap(OUTSIDE.scanner, [sc.flag], sc.ports, target);
      timings.push(`${sc.flag} ${Date.now() - t0} ms`);
      const ctx = context(lab, d, () => nmapReport(nm));
      await expectEqual(nm.run.code, 0, `nmap ${sc.flag} failed`, ctx);
      try {
        await d.waitForLine(/"event":"alert"/, 5000, mark);
      } catch (e) {
        assert.fail(`nmap ${sc.flag} of ${target} raised no alert\n${(e as Error).message}\n${await ctx()}`);
      }
      await sleep(300); // anything more would come with the same drain
      const alerts = alertsOf(d, mark);
      await expectEqual(alerts.length, 1, `exactly one alert for nmap ${sc.flag}`, ctx);
      const a = alerts[0]!;
      await expectEqual(
        { source: a.source, destination: a.destination, proto: a.proto, kind: a.kind, banned: a.banned },
        { source: OUTSIDE.scanner, destination: target, proto: sc.proto, kind: sc.kind, banned: true },
        `${sc.flag}: the alert names the scanner, the scanned address and the scan, and the scanner is banned`,
        ctx,
      );
      await expectOk(
        sc.ports
          .split(',')
          .map(Number)
          .includes(a.port as number),
        `${sc.flag}: the alert names port ${String(a.port)}, which was not scanned`,
        ctx,
      );
      await expectEqual(events(d, mark).filter((e) => e.event === 'ban' && e.source === OUTSIDE.scanner).length, 1, `${sc.flag}: one ban event`, ctx);
      const nports = sc.ports.split(',').length;
      await expectEqual(nm.total, nports, `${sc.flag}: nmap should report on all ${nports} ports`, ctx);
      const learned = [...nm.states.keys()].filter((st) => st !== 'filtered' && st !== 'open|filtered');
      await expectEqual(learned, [], `${sc.flag}: nmap learned something (ports open or closed)`, ctx);
      const u = await lab.cli(['unban', OUTSIDE.scanner, '--config', cfg]);
      await expectEqual(u.code, 0, `unban between scans\n${describeRun(u)}`, ctx);
    }
    const s = await lab.status();
    const ctx = context(lab, d);
    await expectEqual(s.counters.alerts, SCANS.length, `one alert per scan (${timings.join(', ')})`, ctx);
    await expectEqual(s.bansInForce, 0, 'the last unban lifted the ban', ctx);
    t.diagnostic(`scan times: ${timings.join(', ')}`);
  });
}

for (const outsideToo of [false, true]) {
  const what = outsideToo ? ' (the outside network protected too: the reply is settled by conntrack)' : '';
  test(
    `6. attached to both interfaces: an outside query from source port 32773 to the LAN DNS server is answered and bans nobody${what}`,
    { timeout: 60_000 },
    async (t) => {
      requireTools('nft', 'conntrack');
      const lab = await createGatewayLab(t);
      const text = outsideToo ? protectConfig().replace(`networks: ["${LAN.net4}"`, `networks: ["${OUTSIDE.net4}", "${LAN.net4}"`) : protectConfig();
      const cfg = lab.writeConfig('protect.yaml', text);
      const d = await lab.startDaemon({ ifaces: [lab.gwOutIf, lab.gwLanIf], config: cfg, json: true });
      const ctx = context(lab, d);
      const s0 = await lab.status();
      await expectEqual(s0.interfaces.map((i) => i.name).sort(), [lab.gwOutIf, lab.gwLanIf].sort(), 'the daemon should be attached to both interfaces', ctx);
      const q = await lab.client('outside', { proto: 'udp', dst: LAN.dns, port: 53, count: 20, src: OUTSIDE.client, sportRange: '32773-32773', dns: true });
      await expectAllAnswered(q, 20, `queries from ${OUTSIDE.client}:32773 to ${LAN.dns}:53`, ctx);
      const s = await expectNoAlertNoBan(lab, d, 'DNS across both interfaces');
      const b = await lab.bans(['--config', cfg]);
      await expectEqual(
        b.list.map((e) => e.target),
        [],
        `nobody is banned\n${describeRun(b.run)}`,
        ctx,
      );
      if (outsideToo) await expectEqual(Number(s.counters.conntrack ?? 0) >= 20, true, 'every reply was recognised by conntrack', ctx);
      t.diagnostic(`counters: ${counters(s, 'passed', 'probeUdp', 'notProtected', 'service', 'conntrack', 'localSocket')}`);
    },
  );
}
