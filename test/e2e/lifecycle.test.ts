/**
 * End to end: what outlives the daemon, and what `detach --all` takes away.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ATK4, createLab, describeRun, requireTools, run, type Daemon, type Lab } from '../helpers/lab.js';

const TCP_PORTS = '1,11,15,79,111';
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function config(banTtl: string): string {
  return `tcp_ports: "${TCP_PORTS}"\nudp_ports: "1,7,9,69,161"\nscan_trigger: 0\nban_ttl: "${banTtl}"\n`;
}

/** Scans until the daemon reports the attacker banned. */
async function getBanned(lab: Lab, d: Daemon): Promise<void> {
  const mark = d.lines.length;
  const nm = await lab.nmap(['-sS'], TCP_PORTS);
  await d.waitForLine(new RegExp(`^attackalert: Host ${esc(ATK4)} has been blocked`), 5000, mark).catch((e: Error) => {
    throw new Error(`${e.message}\nnmap: ${describeRun(nm.run)}`);
  });
}

/** Nothing of sentry-xdp is left on the gateway's interface or in bpffs. */
async function assertNothingLeft(lab: Lab, ctx: () => string): Promise<void> {
  assert.ok(!existsSync(lab.pinRoot), `the pin root ${lab.pinRoot} should be gone${ctx()}`);

  const link = await lab.gw(['ip', '-d', 'link', 'show', 'dev', lab.gwIf]);
  assert.equal(link.code, 0, describeRun(link));
  assert.doesNotMatch(link.stdout, /\bxdp/, `ip link still shows an XDP program on ${lab.gwIf}\n${link.stdout}${ctx()}`);
  const ipN = await run(['ip', '-n', lab.gwNs, 'link', 'show', lab.gwIf]);
  assert.equal(ipN.code, 0, describeRun(ipN));
  assert.doesNotMatch(ipN.stdout, /\bxdp/, `\`ip -n ${lab.gwNs} link show ${lab.gwIf}\` still shows XDP\n${ipN.stdout}${ctx()}`);

  const net = await lab.gw(['bpftool', '-j', 'net', 'show']);
  assert.equal(net.code, 0, `bpftool net failed\n${describeRun(net)}`);
  const parsed = JSON.parse(net.stdout) as Array<Record<string, unknown[]>>;
  for (const entry of parsed) {
    for (const [hook, progs] of Object.entries(entry)) {
      assert.deepEqual(progs, [], `bpftool net shows something attached at ${hook} in the gateway namespace: ${net.stdout}${ctx()}`);
    }
  }
}

test('the daemon stops on SIGINT, the program and the bans stay, and a second attach is refused', { timeout: 60_000 }, async (t) => {
  requireTools('nmap', 'ping', 'nsenter', 'ip');
  const lab = createLab(t);
  const cfg = lab.writeConfig('sentry.yaml', config('1h'));
  const d = await lab.startDaemon({ config: cfg });
  const progLine = d.matching(/^sentry-xdp: attached to \S+ in \w+ mode \(program id (\d+)\)$/)[0];
  assert.ok(progLine, `the daemon should say which program it attached\n${d.output()}`);
  const progId = Number(/program id (\d+)/.exec(progLine)![1]);

  await getBanned(lab, d);
  const stopped = await d.stop();
  assert.ok(!stopped.killed, `the daemon did not stop on SIGINT within 5 s\n${d.output()}`);
  assert.equal(stopped.code, 0, `the daemon should exit 0 on SIGINT\n${d.output()}`);
  assert.ok(
    d.matching(/^sentry-xdp: daemon stopped; the program stays attached and bans stay enforced$/).length === 1,
    `the daemon should say the program stays attached\n${d.output()}`,
  );

  const s = await lab.status();
  const ctx = `\nstatus: ${JSON.stringify(s)}\n${d.output()}`;
  assert.equal(s.loaded, true, `the program should still be loaded${ctx}`);
  assert.equal(s.daemonPid, null, `no daemon should be running${ctx}`);
  assert.equal(s.interfaces.length, 1, `one interface should still be attached${ctx}`);
  assert.equal(s.interfaces[0]!.name, lab.gwIf, ctx);
  assert.equal(s.interfaces[0]!.stale, false, ctx);
  assert.equal(s.interfaces[0]!.progId, progId, `the same program should still be attached${ctx}`);
  assert.equal(s.bansInForce, 1, `the ban should still be in force${ctx}`);

  const text = await lab.cli(['status']);
  assert.equal(text.code, 3, `no daemon: status exits 3, as LSB and systemctl say "not running"\n${describeRun(text)}`);
  assert.match(text.stdout, /^health: DOWN: no daemon is running/m, describeRun(text));
  assert.match(text.stdout, /daemon: not running/, `plain status should say the daemon is not running\n${describeRun(text)}`);
  assert.match(text.stdout, new RegExp(`^\\s+${esc(lab.gwIf)}\\s+ifindex \\d+`, 'm'), `plain status should list ${lab.gwIf}\n${describeRun(text)}`);

  const p = await lab.ping(false);
  assert.ok(!p.ok, `the attacker is still banned with the daemon stopped; its ping must not get through\n${describeRun(p.run)}`);

  const again = await lab.cli(['attach', lab.gwIf, '--config', cfg, '--no-daemon'], { timeoutMs: 15_000 });
  const ctx2 = `\n${describeRun(again)}`;
  assert.notEqual(again.code, 0, `a second \`attach --no-daemon\` should exit non-zero${ctx2}`);
  const errLines = again.stderr.split('\n').filter(Boolean);
  assert.equal(errLines.length, 1, `a refused attach should print exactly one line on stderr${ctx2}`);
  assert.match(errLines[0]!, /already/i, `the refusal should say the interface is already attached${ctx2}`);

  const after = await lab.status();
  assert.equal(after.interfaces.length, 1, `the refused attach must not change what is attached\n${JSON.stringify(after)}`);
  assert.equal(after.interfaces[0]!.progId, progId, `the refused attach must not replace the program\n${JSON.stringify(after)}`);
  assert.equal(after.bansInForce, 1, `the refused attach must not drop the ban\n${JSON.stringify(after)}`);
  const p2 = await lab.ping(false);
  assert.ok(!p2.ok, `after the refused attach the attacker must still be banned\n${describeRun(p2.run)}`);

  // a restarted daemon adopts what is pinned: same program, same bans
  const d2 = await lab.startDaemon({ config: cfg });
  assert.equal(
    d2.matching(new RegExp(`^sentry-xdp: ${esc(lab.gwIf)}: already attached in \\w+ mode \\(program id ${progId}\\); adopting it$`)).length,
    1,
    `a restarted daemon should adopt the attached program\n${d2.output()}`,
  );
  const s2 = await lab.status();
  assert.equal(s2.interfaces[0]!.progId, progId, `adopting must keep the program\n${JSON.stringify(s2)}`);
  assert.equal(s2.bansInForce, 1, `adopting must keep the ban\n${JSON.stringify(s2)}`);
  const busy = await lab.cli(['attach', lab.gwIf, '--config', cfg], { timeoutMs: 15_000 });
  assert.notEqual(busy.code, 0, `attach while a daemon serves the interface must be refused\n${describeRun(busy)}`);
  assert.match(busy.stderr.trim(), /^sentry-xdp: .*already.*pid/, describeRun(busy));
  const stopped2 = await d2.stop();
  assert.equal(stopped2.code, 0, d2.output());
});

test('detach --all with the daemon stopped leaves nothing behind and lets the banned host through', { timeout: 60_000 }, async (t) => {
  requireTools('nmap', 'ping', 'nsenter', 'ip', 'bpftool');
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('sentry.yaml', config('1h')) });
  await getBanned(lab, d);
  const stopped = await d.stop();
  assert.ok(!stopped.killed, `the daemon did not stop on SIGINT\n${d.output()}`);

  const det = await lab.cli(['detach', '--all']);
  assert.equal(det.code, 0, `detach --all failed\n${describeRun(det)}`);
  assert.match(det.stdout, new RegExp(`detached from ${esc(lab.gwIf)}`), describeRun(det));
  await assertNothingLeft(lab, () => `\n${describeRun(det)}\n${d.output()}`);
  assert.ok(!existsSync(lab.runDir), `the run dir ${lab.runDir} should be gone after detach --all`);

  const s = await lab.status();
  assert.equal(s.loaded, false, `status should say nothing is loaded\n${JSON.stringify(s)}`);
  const p = await lab.ping(false);
  assert.ok(p.ok, `with sentry-xdp detached the formerly banned attacker should get through\n${describeRun(p.run)}`);

  const again = await lab.cli(['detach', '--all']);
  assert.equal(again.code, 0, `a second detach --all should be a harmless no-op\n${describeRun(again)}`);
});

test('detach --all while the daemon runs leaves nothing behind; the daemon notices and stops by itself', { timeout: 60_000 }, async (t) => {
  requireTools('nmap', 'ping', 'nsenter', 'ip', 'bpftool');
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('sentry.yaml', config('1h')) });
  await getBanned(lab, d);

  const det = await lab.cli(['detach', '--all']);
  assert.equal(det.code, 0, `detach --all failed\n${describeRun(det)}\n${d.output()}`);
  await assertNothingLeft(lab, () => `\n${describeRun(det)}\n${d.output()}`);
  const p = await lab.ping(false);
  assert.ok(p.ok, `with sentry-xdp detached the formerly banned attacker should get through\n${describeRun(p.run)}\n${d.output()}`);

  await d.waitForLine(/^sentry-xdp: the pinned program was removed .*; the daemon stops$/, 5000);
  const stopped = await d.stop();
  assert.ok(!stopped.killed, `the daemon did not stop after detach --all\n${d.output()}`);
  assert.equal(stopped.code, 0, `the daemon should exit 0 after detach --all\n${d.output()}`);
  assert.ok(!existsSync(lab.runDir), `the run dir ${lab.runDir} should be gone too`);
  assert.ok(!existsSync(lab.pinRoot), `stopping the daemon must not re-create the pin root ${lab.pinRoot}`);
});
