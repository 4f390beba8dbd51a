/**
 * End to end: nmap scans from the attacker namespace against a gateway running
 * sentry-xdp. Each scan kind gets a fresh lab and daemon; we check the alert
 * and ban lines, what nmap saw, the kernel counters, the ban while it lasts and
 * the way through after it expires.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ATK4, ATK6, createLab, describeRun, requireTools, sleep, type Daemon, type NmapResult } from '../helpers/lab.js';

const TCP_PORTS = '1,11,15,79,111';
const UDP_PORTS = '1,7,9,69,161';
const BAN_SECONDS = 5;

function config(): string {
  return [
    `tcp_ports: "${TCP_PORTS}"`,
    `udp_ports: "${UDP_PORTS}"`,
    'scan_trigger: 0',
    'scan_window: "60s"',
    'block_tcp: 1',
    'block_udp: 1',
    `ban_ttl: "${BAN_SECONDS}s"`,
    '',
  ].join('\n');
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface ScanKind {
  flag: string;
  proto: 'tcp' | 'udp';
  ports: string;
  name: string; // PortSentry's wording in the alert line
  allowed: string[]; // the nmap states every port must be in
  counter: string; // the probe counter that must have moved
}

const KINDS: ScanKind[] = [
  { flag: '-sS', proto: 'tcp', ports: TCP_PORTS, name: 'TCP SYN/Normal scan', allowed: ['filtered'], counter: 'probeSyn' },
  { flag: '-sF', proto: 'tcp', ports: TCP_PORTS, name: 'TCP FIN scan', allowed: ['filtered', 'open|filtered'], counter: 'probeFin' },
  { flag: '-sN', proto: 'tcp', ports: TCP_PORTS, name: 'TCP NULL scan', allowed: ['filtered', 'open|filtered'], counter: 'probeNull' },
  { flag: '-sX', proto: 'tcp', ports: TCP_PORTS, name: 'TCP XMAS scan', allowed: ['filtered', 'open|filtered'], counter: 'probeXmas' },
  { flag: '-sU', proto: 'udp', ports: UDP_PORTS, name: 'UDP scan', allowed: ['filtered', 'open|filtered'], counter: 'probeUdp' },
];

function nmapReport(nm: NmapResult): string {
  return `states ${JSON.stringify(Object.fromEntries(nm.states))}\n${describeRun(nm.run)}`;
}

/** Every scanned port is in an allowed state: none `open`, none `closed`. */
function assertNmapBlind(nm: NmapResult, ports: string, allowed: string[], d: Daemon): void {
  const n = ports.split(',').length;
  assert.equal(nm.run.code, 0, `nmap failed\n${nmapReport(nm)}\n${d.output()}`);
  assert.equal(nm.total, n, `nmap should report on all ${n} ports\n${nmapReport(nm)}`);
  for (const [state, count] of nm.states) {
    assert.ok(
      allowed.includes(state),
      `nmap saw ${count} port(s) ${state}; every port should be ${allowed.join(' or ')} (nothing may answer a banned scanner)\n${nmapReport(nm)}\n${d.output()}`,
    );
  }
}

for (const k of KINDS) {
  test(`nmap ${k.flag} is detected once, blocked for the ban's length, then let through`, { timeout: 60_000 }, async (t) => {
    requireTools('nmap', 'ping', 'nsenter', 'ip');
    const lab = createLab(t);
    const d = await lab.startDaemon({ config: lab.writeConfig('sentry.yaml', config()) });
    const attachedLine = d.matching(new RegExp(`^sentry-xdp: attached to ${lab.gwIf} in (native|generic) mode \\(program id \\d+\\)`));
    assert.equal(attachedLine.length, 1, `the daemon should say where it attached\n${d.output()}`);

    const before = await lab.ping(false);
    assert.ok(before.ok, `the lab is broken: the attacker cannot ping the gateway before any scan\n${describeRun(before.run)}\n${d.output()}`);

    const mark = d.lines.length;
    const nm = await lab.nmap([k.flag], k.ports);

    // while the ban lasts nothing gets through, ICMP included
    const banned = await lab.ping(false);
    assert.ok(!banned.ok, `ping from the banned attacker got an answer\n${describeRun(banned.run)}\n${d.output()}`);

    await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been blocked`), 5000, mark);
    await sleep(1000); // let the daemon flush anything else it has

    const alertRe = new RegExp(`^attackalert: .* from host: ${esc(ATK4)}/${esc(ATK4)} to `);
    const alerts = d.matching(alertRe, mark);
    assert.equal(alerts.length, 1, `expected exactly one alert line for ${ATK4}, got ${alerts.length}\n${d.output()}`);
    const m = new RegExp(`^attackalert: ${esc(k.name)} from host: ${esc(ATK4)}/${esc(ATK4)} to ${k.proto.toUpperCase()} port: (\\d+)$`).exec(alerts[0]!);
    assert.ok(m, `the alert line should read "${k.name} ... to ${k.proto.toUpperCase()} port: N"\n${d.output()}`);
    assert.ok(k.ports.split(',').includes(m[1]!), `the alert names port ${m[1]}, which nmap did not scan\n${d.output()}`);

    const bans = d.matching(new RegExp(`^attackalert: Host ${esc(ATK4)} has been blocked via XDP drop \\(ban ${BAN_SECONDS}s, until \\S+\\)$`), mark);
    assert.equal(bans.length, 1, `expected exactly one ban line for ${ATK4} (ban ${BAN_SECONDS}s)\n${d.output()}`);
    assert.equal(d.matching(/^attackalert: /, mark).length, 2, `expected one alert and one ban line, nothing else\n${d.output()}`);

    assertNmapBlind(nm, k.ports, k.allowed, d);

    const s = await lab.status();
    const c = s.counters;
    const ctx = `\nstatus: ${JSON.stringify(s)}\n${d.output()}`;
    assert.ok(BigInt(c.dropped ?? 0) > 0n, `the dropped counter should be > 0${ctx}`);
    assert.equal(c.alerts, 1, `the alerts counter should be 1${ctx}`);
    assert.equal(c.bansAdded, 1, `the bansAdded counter should be 1${ctx}`);
    assert.ok(BigInt(c[k.counter] ?? 0) >= 1n, `the ${k.counter} counter should be >= 1${ctx}`);
    assert.equal(s.bansInForce, 1, `one ban should be in force${ctx}`);
    assert.equal(s.daemonPid, d.child.pid, `status should name the running daemon${ctx}`);
    assert.deepEqual(
      s.interfaces.map((i) => [i.name, i.stale]),
      [[lab.gwIf, false]],
      `status should list the one attached interface${ctx}`,
    );

    await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been unblocked \\(ban expired\\)$`), (BAN_SECONDS + 6) * 1000, mark);
    const through = await lab.pingGetsThrough(false);
    assert.ok(through.ok, `after the ban expired the attacker should get through again\n${through.log}\n${d.output()}`);
    const after = await lab.status();
    assert.equal(after.bansInForce, 0, `no ban should be in force after expiry\n${JSON.stringify(after)}`);

    const stopped = await d.stop();
    assert.ok(!stopped.killed && stopped.code === 0, `the daemon should exit 0 on SIGINT\n${d.output()}`);
  });
}

test('nmap -6 -sS is detected once and the IPv6 scanner is blocked (JSON output)', { timeout: 60_000 }, async (t) => {
  requireTools('nmap', 'ping', 'nsenter', 'ip');
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('sentry.yaml', config()), json: true });

  const before = await lab.ping(true);
  assert.ok(before.ok, `the lab is broken: the attacker cannot ping6 the gateway before any scan\n${describeRun(before.run)}\n${d.output()}`);

  const mark = d.lines.length;
  const nm = await lab.nmap(['-sS'], TCP_PORTS, true);
  const banned = await lab.ping(true);
  assert.ok(!banned.ok, `ping -6 from the banned attacker got an answer\n${describeRun(banned.run)}\n${d.output()}`);

  await d.waitForLine(/"event":"ban"/, 5000, mark);
  await sleep(1000);

  const events = d.lines.map((l, i) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      assert.fail(`with --json every line should be a JSON object; line ${i + 1} is not: ${l}\n${d.output()}`);
    }
  });
  for (const e of events) assert.ok(typeof e.event === 'string', `every JSON line needs an "event" field: ${JSON.stringify(e)}`);
  const fresh = events.slice(mark);
  const alerts = fresh.filter((e) => e.event === 'alert');
  const bans = fresh.filter((e) => e.event === 'ban');
  assert.equal(alerts.length, 1, `expected exactly one alert event\n${d.output()}`);
  assert.equal(bans.length, 1, `expected exactly one ban event\n${d.output()}`);
  const a = alerts[0]!;
  assert.equal(a.source, ATK6, `the alert's source should be ${ATK6}\n${d.output()}`);
  assert.equal(a.proto, 'tcp');
  assert.equal(a.kind, 'syn');
  assert.equal(a.iface, lab.gwIf);
  assert.ok(
    TCP_PORTS.split(',')
      .map(Number)
      .includes(a.port as number),
    `alert port ${String(a.port)} was not scanned`,
  );
  assert.equal(bans[0]!.source, ATK6, `the ban's source should be ${ATK6}\n${d.output()}`);
  assert.equal(bans[0]!.ttlSeconds, BAN_SECONDS);

  assertNmapBlind(nm, TCP_PORTS, ['filtered'], d);

  const s = await lab.status();
  const ctx = `\nstatus: ${JSON.stringify(s)}\n${d.output()}`;
  assert.ok(BigInt(s.counters.dropped ?? 0) > 0n, `the dropped counter should be > 0${ctx}`);
  assert.equal(s.counters.alerts, 1, `the alerts counter should be 1${ctx}`);
  assert.equal(s.bansInForce, 1, `one ban should be in force${ctx}`);

  await d.waitForLine(/"event":"unban"/, (BAN_SECONDS + 6) * 1000, mark);
  const unban = d.lines
    .slice(mark)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((e) => e.event === 'unban');
  assert.equal(unban?.source, ATK6, `the unban event should name ${ATK6}\n${d.output()}`);
  const through = await lab.pingGetsThrough(true);
  assert.ok(through.ok, `after the ban expired the IPv6 attacker should get through again\n${through.log}\n${d.output()}`);
});
