/**
 * End to end: running on a real gateway. PortSentry config import, advanced
 * mode following the host's listening sockets, notifications that never flood,
 * the metrics endpoint, `top` in a terminal, reload on SIGHUP.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parsePortList } from '../../src/core/ports.js';
import { ATK4, BIN, createLab, describeRun, GW4, REPO, requireTools, run, sleep } from '../helpers/lab.js';

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const FIXTURES = join(REPO, 'test', 'fixtures', 'portsentry');

function confValue(conf: string, key: string): string {
  const m = new RegExp(`^${key}\\s*=\\s*"([^"]*)"`, 'm').exec(conf);
  assert.ok(m, `${key} in the fixture`);
  return m[1]!;
}

for (const [fixture, modes] of [
  ['gentoo.conf', 'tcp,udp'],
  ['unc.conf', 'tcp,udp'],
  ['ganymede.conf', 'tcp,udp'],
] as const) {
  test(`importing ${fixture} gives a valid sentry.yaml, and attaching with it watches exactly the listed ports`, { timeout: 60_000 }, async (t) => {
    const lab = createLab(t);
    const out = join(lab.confDir, 'imported.yaml');
    const imp = await run([BIN, 'config', 'import-portsentry', join(FIXTURES, fixture), '--modes', modes, '-o', out]);
    assert.equal(imp.code, 0, describeRun(imp));
    const chk = await run([BIN, 'config', 'check', out]);
    assert.equal(chk.code, 0, describeRun(chk));
    const conf = readFileSync(join(FIXTURES, fixture), 'utf8');
    const a = await lab.cli(['attach', lab.gwIf, '--no-daemon', '--config', out]);
    assert.equal(a.code, 0, describeRun(a));
    const s = await lab.status();
    assert.deepEqual(s.watch!.tcp, parsePortList(confValue(conf, 'TCP_PORTS'), 'TCP_PORTS'));
    assert.deepEqual(s.watch!.udp, parsePortList(confValue(conf, 'UDP_PORTS'), 'UDP_PORTS'));
  });
}

test('advanced mode follows the listening sockets: a new service is no tripwire within 2 s, a stopped one is again', { timeout: 60_000 }, async (t) => {
  requireTools('python3', 'curl', 'hping3');
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('adv.yaml', 'tcp_ports: ""\nudp_ports: ""\nadvanced: { tcp: 1024 }\nban_ttl: 10m\n') });
  assert.ok((await lab.status()).watch!.tcp.includes(600));
  const svc = spawn('nsenter', [`--net=/run/netns/${lab.gwNs}`, '--', 'python3', '-m', 'http.server', '600', '--bind', GW4], { stdio: 'ignore' });
  t.after(() => svc.kill('SIGKILL'));
  const t0 = Date.now();
  await d.waitForLine(/^sentry-xdp: TCP 600: a local service listens there now; no longer watched$/, 2500);
  assert.ok(Date.now() - t0 <= 2500, 'within two seconds');
  const c = await lab.atk(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '3', `http://${GW4}:600/`]);
  assert.equal(c.stdout, '200', describeRun(c));
  assert.equal((await lab.status()).bansInForce, 0, 'the client is not banned');
  svc.kill('SIGKILL');
  await d.waitForLine(/^sentry-xdp: TCP 600: nothing listens there any more; watched again$/, 2500);
  await lab.probe(ATK4, 600);
  await d.waitForLine(new RegExp(`^attackalert: TCP SYN/Normal scan from host: ${esc(ATK4)}/${esc(ATK4)} to TCP port: 600$`), 5000);
});

test('a burst of 500 scanning sources gives at most one notification per interval, and it names them all', { timeout: 90_000 }, async (t) => {
  requireTools('hping3');
  const lab = createLab(t);
  const inbox = join(lab.confDir, 'inbox');
  const script = join(lab.confDir, 'notify.sh');
  writeFileSync(script, `#!/bin/sh\n{ echo "=== $SENTRY_SUBJECT"; cat; } >> ${inbox}\n`);
  chmodSync(script, 0o755);
  const d = await lab.startDaemon({
    // 500 random sources, one probe each: a spoofed flood to the kernel; here it stands for 500 real scanners
    config: lab.writeConfig(
      'n.yaml',
      `tcp_ports: "1"\nban_ttl: 10m\nflood: { pressure: 0, alerts_per_second: 0 }\nnotify: { command: "${script}", interval: 8s }\n`,
    ),
  });
  const burst = await lab.atk(['hping3', '-S', '-p', '1', '--rand-source', '-c', '500', '-i', 'u2000', GW4], { timeoutMs: 30_000 });
  assert.ok(!burst.timedOut, describeRun(burst));
  await sleep(1000);
  const banned = d.matching(/^attackalert: Host (\S+) has been blocked via XDP drop/).map((l) => /Host (\S+)/.exec(l)![1]!);
  assert.ok(banned.length >= 450, `most of the 500 random sources were banned (${banned.length})`);
  for (let i = 0; i < 120 && !existsSync(inbox); i++) await sleep(100);
  await sleep(2000);
  const text = readFileSync(inbox, 'utf8');
  const messages = text.split(/^=== /m).filter(Boolean);
  assert.equal(messages.length, 1, `one notification for the burst, got ${messages.length}:\n${text.slice(0, 2000)}`);
  assert.match(messages[0]!, new RegExp(`${banned.length} new bans`));
  const missing = banned.filter((s) => !messages[0]!.includes(s));
  assert.deepEqual(missing, [], 'the digest names every banned source');
});

test('the metrics endpoint (localhost) shows the counters moving during a scan', { timeout: 60_000 }, async (t) => {
  requireTools('curl', 'nmap');
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('m.yaml', 'tcp_ports: "1,11,15"\nban_ttl: 10m\nmetrics: { port: 9641 }\n') });
  await d.waitForLine(/^sentry-xdp: metrics: http:\/\/127\.0\.0\.1:9641\/metrics$/, 5000);
  const scrape = async () => {
    const r = await lab.gw(['curl', '-s', '--max-time', '3', 'http://127.0.0.1:9641/metrics']);
    assert.equal(r.code, 0, describeRun(r));
    const v = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(r.stdout)?.[1] ?? NaN);
    return { alerts: v('sentry_xdp_alerts_total'), dropped: v('sentry_xdp_packets_total\\{verdict="drop"\\}'), text: r.stdout };
  };
  const before = await scrape();
  assert.equal(before.alerts, 0, before.text.slice(0, 500));
  await lab.nmap(['-sS'], '1,11,15');
  await sleep(1500);
  const after = await scrape();
  assert.equal(after.alerts, 1, after.text.slice(0, 2000));
  assert.ok(after.dropped > 0);
  assert.match(after.text, /^sentry_xdp_bans_in_force\{origin="auto"\} 1$/m);
  assert.match(after.text, /^sentry_xdp_probes_by_port_total\{proto="tcp",port="(1|11|15)"\} 1$/m, 'probes by port');
});

test('`top` renders in a terminal (tmux)', { timeout: 60_000 }, async (t) => {
  requireTools('tmux', 'hping3');
  const lab = createLab(t);
  const cfg = lab.writeConfig('top.yaml', 'tcp_ports: "1"\nban_ttl: 10m\n');
  const d = await lab.startDaemon({ config: cfg });
  await lab.probe(ATK4, 1);
  await d.waitForLine(/has been blocked/, 5000);
  const session = `sxtop${process.pid}`;
  const env = Object.entries(lab.env)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const start = await run([
    'tmux',
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    '160',
    '-y',
    '50',
    'env',
    ...env,
    'nsenter',
    `--net=/run/netns/${lab.gwNs}`,
    '--',
    BIN,
    'top',
    '--config',
    cfg,
    '--interval',
    '1',
  ]);
  assert.equal(start.code, 0, describeRun(start));
  t.after(() => run(['tmux', 'kill-session', '-t', session]));
  let screen = '';
  for (let i = 0; i < 30; i++) {
    await sleep(300);
    screen = (await run(['tmux', 'capture-pane', '-p', '-t', session])).stdout;
    if (screen.includes(ATK4) && screen.includes('drop rate')) break;
  }
  assert.match(screen, /^sentry-xdp top /m, screen);
  assert.match(screen, /drop rate \d+ pkt\/s/, screen);
  assert.match(screen, new RegExp(`alert\\s+${esc(ATK4)}\\s+TCP SYN/Normal scan to ${esc(GW4)} TCP port 1`), screen);
  assert.match(screen, new RegExp(`destinations probed\\s+alerts\\n\\s+${esc(GW4)}\\s+1`), screen);
  assert.match(screen, new RegExp(`^\\s+${esc(ATK4)}\\s+1\\s+1\\s+1$`, 'm'), screen);
  await run(['tmux', 'send-keys', '-t', session, 'q']);
});

test(
  'SIGHUP (`sentry-xdp reload`) applies a changed config without losing a ban; a bad one is refused and the running one stays',
  { timeout: 60_000 },
  async (t) => {
    const lab = createLab(t);
    const cfg = lab.writeConfig('r.yaml', 'tcp_ports: "1"\nban_ttl: 10m\n');
    const d = await lab.startDaemon({ config: cfg });
    const b = await lab.cli(['ban', '203.0.113.8', '--ttl', '1h', '--config', cfg]);
    assert.equal(b.code, 0, describeRun(b));
    writeFileSync(cfg, 'tcp_ports: "1"\nban_ttl: 10m\nscan_trigger: [oops\n');
    let r = await lab.cli(['reload']);
    assert.equal(r.code, 0, describeRun(r));
    await d.waitForLine(/^sentry-xdp: reload refused, the running config stays: .*r\.yaml:\d+: YAML syntax error/, 5000);
    writeFileSync(cfg, 'tcp_ports: "1,2"\nban_ttl: 20m\nscan_trigger: 2\n');
    r = await lab.cli(['reload']);
    assert.equal(r.code, 0, describeRun(r));
    await d.waitForLine(/^sentry-xdp: reloaded .*r\.yaml: scan trigger 2 in 1m; .*bans last 20m/, 5000);
    await d.waitForLine(/^sentry-xdp: TCP 2: now watched \(config\)$/, 3000);
    const l = await lab.cli(['list', '--json', '--config', cfg]);
    assert.ok(
      (JSON.parse(l.stdout) as { bans: Array<{ target: string }> }).bans.some((e) => e.target === '203.0.113.8'),
      'no ban lost',
    );
    assert.equal(d.exited, false);
  },
);
