/**
 * End to end: the daemon's interface supervisor. Interfaces that appear late,
 * are deleted and created again, or are renamed stay protected, and `status`
 * says which are waiting (exit 1 until everything asked for is attached).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { ATK4, ATK6, createLab, describeRun, GW4, GW6, run, sleep, type Lab } from '../helpers/lab.js';

const CONFIG = 'tcp_ports: "1,11,15"\nban_ttl: 10m\n';
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function statusOf(
  lab: Lab,
): Promise<{ code: number | null; json: { health: string; problems: string[]; interfaces: Array<{ name: string; state: string; reason?: string }> } }> {
  const r = await lab.cli(['status', '--json']);
  return { code: r.code, json: JSON.parse(r.stdout) as never };
}

async function mustRun(argv: string[]): Promise<void> {
  const r = await run(argv);
  assert.equal(r.code, 0, describeRun(r));
}

/** The lab's veth pair again, as setup made it (addresses and all). */
async function recreatePair(lab: Lab): Promise<void> {
  await mustRun(['ip', 'link', 'add', lab.gwIf, 'netns', lab.gwNs, 'type', 'veth', 'peer', 'name', lab.atkIf, 'netns', lab.atkNs]);
  await mustRun(['ip', '-n', lab.gwNs, 'addr', 'add', `${GW4}/24`, 'dev', lab.gwIf]);
  await mustRun(['ip', '-n', lab.gwNs, 'addr', 'add', `${GW6}/64`, 'dev', lab.gwIf, 'nodad']);
  await mustRun(['ip', '-n', lab.atkNs, 'addr', 'add', `${ATK4}/24`, 'dev', lab.atkIf]);
  await mustRun(['ip', '-n', lab.atkNs, 'addr', 'add', `${ATK6}/64`, 'dev', lab.atkIf, 'nodad']);
  await mustRun(['ip', '-n', lab.gwNs, 'link', 'set', lab.gwIf, 'up']);
  await mustRun(['ip', '-n', lab.atkNs, 'link', 'set', lab.atkIf, 'up']);
}

test(
  'attach A MISSING: A is protected at once; MISSING is waited for (status exit 1), then attached within 5 s of appearing',
  { timeout: 60_000 },
  async (t) => {
    const lab = createLab(t);
    const late = `sxl${process.pid % 100000}x`;
    const d = await lab.startDaemon({ config: lab.writeConfig('s.yaml', CONFIG), args: [late] });
    await d.waitForLine(new RegExp(`^sentry-xdp: ${esc(late)}: no such interface yet; waiting for it`), 5000);
    let s0 = await statusOf(lab);
    for (let i = 0; i < 30 && s0.code !== 1; i++) {
      await sleep(100); // the daemon writes what it sees once a second
      s0 = await statusOf(lab);
    }
    assert.equal(s0.code, 1, 'degraded while an interface is missing');
    assert.equal(s0.json.health, 'degraded');
    assert.match(s0.json.problems.join('; '), new RegExp(`^${esc(late)}: waiting \\(.+\\)$`), 'status says what is not protected');
    assert.deepEqual(
      s0.json.interfaces.map((i) => [i.name, i.state]),
      [
        [lab.gwIf, 'attached'],
        [late, 'waiting'],
      ].sort((a, b) => a[0]!.localeCompare(b[0]!)),
    );
    const scan = await lab.nmap(['-sS'], '1,11,15');
    assert.deepEqual([...scan.states.keys()], ['filtered'], `the present interface is protected at once\n${describeRun(scan.run)}`);
    await d.waitForLine(/has been blocked via XDP drop/, 5000);
    const t0 = Date.now();
    await mustRun(['ip', '-n', lab.gwNs, 'link', 'add', late, 'type', 'veth', 'peer', 'name', `${late}p`]);
    await mustRun(['ip', '-n', lab.gwNs, 'link', 'set', late, 'up']);
    await d.waitForLine(new RegExp(`^sentry-xdp: ${esc(late)}: appeared; attached in \\w+ mode`), 5000);
    assert.ok(Date.now() - t0 <= 5000, 'within 5 s');
    const s1 = await statusOf(lab);
    assert.equal(s1.code, 0, `everything asked for is protected: ${JSON.stringify(s1.json.interfaces)}`);
    assert.ok(s1.json.interfaces.every((i) => i.state === 'attached'));
    assert.equal(s1.json.health, 'ok');
  },
);

test('an interface deleted and created again under its name is protected again within 5 s: nmap learns nothing', { timeout: 60_000 }, async (t) => {
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('s.yaml', CONFIG) });
  await mustRun(['ip', '-n', lab.gwNs, 'link', 'del', lab.gwIf]);
  await d.waitForLine(new RegExp(`^sentry-xdp: ${esc(lab.gwIf)}: no such interface any more; waiting for it`), 5000);
  const t0 = Date.now();
  await recreatePair(lab);
  await d.waitForLine(new RegExp(`^sentry-xdp: ${esc(lab.gwIf)}: re-created; attached again in \\w+ mode`), 5000);
  assert.ok(Date.now() - t0 <= 5000, 'within 5 s');
  await sleep(300);
  const scan = await lab.nmap(['-sS'], '1,11,15');
  assert.deepEqual([...scan.states.keys()], ['filtered'], `nmap learns nothing\n${describeRun(scan.run)}\n${d.output()}`);
  await d.waitForLine(new RegExp(`^attackalert: TCP SYN/Normal scan from host: ${esc(ATK4)}/`), 5000);
  assert.equal((await statusOf(lab)).code, 0);
});

test('a renamed interface: detection goes on, status shows the new name, and detach NEWNAME works', { timeout: 60_000 }, async (t) => {
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('s.yaml', CONFIG) });
  const renamed = `${lab.gwIf.slice(0, 12)}rn`;
  await mustRun(['ip', '-n', lab.gwNs, 'link', 'set', lab.gwIf, 'down']);
  await mustRun(['ip', '-n', lab.gwNs, 'link', 'set', lab.gwIf, 'name', renamed]);
  await mustRun(['ip', '-n', lab.gwNs, 'link', 'set', renamed, 'up']);
  await d.waitForLine(new RegExp(`^sentry-xdp: ${esc(lab.gwIf)} was renamed ${esc(renamed)}; following it`), 5000);
  const s = await statusOf(lab);
  assert.equal(s.code, 0, JSON.stringify(s.json));
  assert.deepEqual(
    s.json.interfaces.map((i) => [i.name, i.state]),
    [[renamed, 'attached']],
  );
  const scan = await lab.nmap(['-sS'], '1,11,15');
  assert.deepEqual([...scan.states.keys()], ['filtered'], `${describeRun(scan.run)}\n${d.output()}\n${JSON.stringify(await lab.status())}`);
  const alert = await d.waitForLine(/^attackalert: TCP SYN\/Normal scan from host/, 5000);
  assert.ok(alert);
  const det = await lab.cli(['detach', renamed]);
  assert.equal(det.code, 0, `detach NEWNAME works\n${describeRun(det)}`);
  await d.waitForLine(new RegExp(`^sentry-xdp: ${esc(renamed)}: detached \\(sentry-xdp detach\\); no longer supervised`), 5000);
  await sleep(1500);
  assert.deepEqual((await statusOf(lab)).json.interfaces, [], 'the daemon does not attach it again');
});

test("attach OTHER --no-daemon while a daemon runs leaves the daemon's config in the kernel and hands OTHER to it", { timeout: 60_000 }, async (t) => {
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('s.yaml', 'tcp_ports: "1,11,15,79,111"\nban_ttl: 10m\n') });
  const other = `sxo${process.pid % 100000}x`;
  await mustRun(['ip', '-n', lab.gwNs, 'link', 'add', other, 'type', 'veth', 'peer', 'name', `${other}p`]);
  await mustRun(['ip', '-n', lab.gwNs, 'link', 'set', other, 'up']);
  const a = await lab.cli(['attach', other, '--no-daemon']); // no -c: the defaults must not reach the kernel
  assert.equal(a.code, 0, describeRun(a));
  assert.match(a.stdout, /a daemon runs \(pid \d+\): the kernel keeps its config/, describeRun(a));
  await d.waitForLine(new RegExp(`^sentry-xdp: ${esc(other)}: attached by another command; supervised from now on`), 5000);
  const port = async (p: number) => {
    const r = await run(['bpftool', '-j', 'map', 'lookup', 'pinned', `${lab.pinRoot}/sentry_ports`, 'key', ...[p & 255, p >> 8, 0, 0].map(String)]);
    assert.equal(r.code, 0, describeRun(r));
    return (JSON.parse(r.stdout) as { value: string[] }).value[0];
  };
  assert.equal(await port(79), '0x01', 'a port of the running config is still watched');
  assert.equal(await port(143), '0x00', "a port of the built-in defaults (not in the daemon's config) did not come back");
  assert.deepEqual((await lab.status()).watch?.tcp, [1, 11, 15, 79, 111]);
  const scan = await lab.nmap(['-sS'], '79');
  assert.deepEqual([...scan.states.keys()], ['filtered'], describeRun(scan.run));
});

test('a second daemon in the same network namespace (its own pin root) is refused with one line naming the first', { timeout: 60_000 }, async (t) => {
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('s.yaml', CONFIG) });
  const other = `sxq${process.pid % 100000}x`;
  await mustRun(['ip', '-n', lab.gwNs, 'link', 'add', other, 'type', 'veth', 'peer', 'name', `${other}p`]);
  const env = { SENTRY_XDP_PIN_ROOT: `${lab.pinRoot}-b`, SENTRY_XDP_RUN_DIR: `${lab.runDir}-b`, SENTRY_XDP_STATE_DIR: `${lab.stateDir}-b` };
  t.after(() => run(['rm', '-rf', env.SENTRY_XDP_RUN_DIR, env.SENTRY_XDP_STATE_DIR]));
  const r = await lab.cli(['attach', other, '--config', lab.writeConfig('b.yaml', CONFIG)], { env, timeoutMs: 15_000 });
  assert.notEqual(r.code, 0, describeRun(r));
  assert.match(
    r.stderr,
    new RegExp(
      `^sentry-xdp: another sentry-xdp daemon \\(pid \\d+, pins in ${esc(lab.pinRoot)}\\) already runs in this network namespace with nftables table inet sentry_xdp; `,
    ),
    describeRun(r),
  );
  assert.equal(r.stderr.trim().split('\n').length, 1, describeRun(r));
  assert.ok(!existsSync(`${env.SENTRY_XDP_PIN_ROOT}/prog`), 'the refused daemon loaded nothing');
  assert.equal(d.exited, false, 'the first daemon goes on');
});
