/**
 * End to end: the program itself. Multi-buffer XDP on a jumbo-MTU link, and
 * pinned maps of another ABI refused without a byte of them overwritten.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ABI_VERSION } from '../../src/core/abi.js';
import { rmSync, writeFileSync } from 'node:fs';
import { ATK4, BIN, createLab, describeRun, GW4, requireTools, run, sleep } from '../helpers/lab.js';

test(
  'an MTU-9000 veth attaches in native mode; an 8 000-byte ping passes; the MTU can change while attached; a scan is banned',
  { timeout: 60_000 },
  async (t) => {
    requireTools('nmap', 'ping');
    const lab = createLab(t);
    for (const [ns, ifc] of [
      [lab.gwNs, lab.gwIf],
      [lab.atkNs, lab.atkIf],
    ] as const) {
      const r = await run(['ip', '-n', ns, 'link', 'set', ifc, 'mtu', '9000']);
      assert.equal(r.code, 0, describeRun(r));
    }
    const d = await lab.startDaemon({ config: lab.writeConfig('j.yaml', 'tcp_ports: "1,11,15"\nban_ttl: 10m\n'), args: ['--mode', 'native'] });
    await d.waitForLine(/^sentry-xdp: program: multi-buffer XDP \(xdp\.frags\)/, 2000);
    const s = await lab.status();
    assert.equal(s.interfaces[0]?.mode, 'native', JSON.stringify(s.interfaces));
    const big = await lab.atk(['ping', '-4', '-n', '-c1', '-W2', '-M', 'do', '-s', '8000', GW4], { timeoutMs: 10_000 });
    assert.equal(big.code, 0, `an 8 000-byte ping passes\n${describeRun(big)}\n${d.output()}`);
    for (const mtu of ['1500', '9000']) {
      const r = await lab.gw(['ip', 'link', 'set', lab.gwIf, 'mtu', mtu]);
      assert.equal(r.code, 0, `the MTU changes to ${mtu} while attached\n${describeRun(r)}`);
    }
    const scan = await lab.nmap(['-sS'], '1,11,15');
    assert.deepEqual([...scan.states.keys()], ['filtered'], describeRun(scan.run));
    await d.waitForLine(new RegExp(`^attackalert: Host ${ATK4.replaceAll('.', '\\.')} has been blocked via XDP drop`), 5000);
  },
);

test(
  'pinned maps of another ABI version (another layout too) are refused with one line, and nothing in them is overwritten',
  { timeout: 60_000 },
  async (t) => {
    requireTools('bpftool');
    const lab = createLab(t);
    const a = await lab.cli(['attach', lab.gwIf, '--no-daemon']);
    assert.equal(a.code, 0, describeRun(a));
    const b = await lab.cli(['ban', '203.0.113.9', '--ttl', '1h']);
    assert.equal(b.code, 0, describeRun(b));
    const info = `${lab.pinRoot}/sentry_info`;
    const other = ABI_VERSION + 1;
    const w = await run(['bpftool', 'map', 'update', 'pinned', info, 'key', '0', '0', '0', '0', 'value', String(other), '0', '0', '0', '0', '0', '0', '0']);
    assert.equal(w.code, 0, describeRun(w));
    // as an older version left it: a map of another layout, which libbpf would refuse to reuse with an error of its own
    const presence = `${lab.pinRoot}/sentry_presence`;
    rmSync(presence);
    const old = await run(['bpftool', 'map', 'create', presence, 'type', 'array', 'key', '4', 'value', '16', 'entries', '1', 'name', 'sentry_presence']);
    assert.equal(old.code, 0, describeRun(old));
    const dumpBans = async () => (await run(['bpftool', '-j', 'map', 'dump', 'pinned', `${lab.pinRoot}/sentry_bans_v4`])).stdout;
    const before = await dumpBans();
    for (const args of [['attach', lab.gwIf], ['status'], ['ban', '203.0.113.10']]) {
      const r = await lab.cli(args, { timeoutMs: 15_000 });
      assert.notEqual(r.code, 0, `refused: ${describeRun(r)}`);
      assert.match(
        r.stderr,
        new RegExp(`holds the maps of another sentry-xdp version \\(ABI ${other}, this one is ${ABI_VERSION}\\); run \`sentry-xdp detach --all\``),
        describeRun(r),
      );
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    }
    await sleep(100);
    assert.equal(await dumpBans(), before, 'the ban table is as it was');
    const again = await run(['bpftool', '-j', 'map', 'lookup', 'pinned', info, 'key', '0', '0', '0', '0']);
    assert.match(again.stdout, new RegExp(`"value":\\["0x0${other}"`), `sentry_info still says ABI ${other}: ${again.stdout}`);
    const gone = await lab.cli(['detach', '--all']);
    assert.equal(gone.code, 0, `detach --all removes maps of another version: ${describeRun(gone)}`);
  },
);

test('a reload refused for capacity (5 000 ttl_rules) leaves the kernel exactly as it was: a scan is still banned', { timeout: 60_000 }, async (t) => {
  requireTools('bpftool', 'nmap');
  const lab = createLab(t);
  const cfg = lab.writeConfig('r.yaml', 'tcp_ports: "1,11,15"\nban_ttl: 10m\n');
  const d = await lab.startDaemon({ config: cfg });
  const dump = async (map: string) => (await run(['bpftool', '-j', 'map', 'dump', 'pinned', `${lab.pinRoot}/${map}`])).stdout;
  const before = await Promise.all(['sentry_config', 'sentry_ttl_v4', 'sentry_ports'].map(dump));
  const rules = Array.from({ length: 5000 }, (_, i) => `  - { cidr: 10.${i >> 8}.${i & 255}.0/24, ttl: 1m }`);
  writeFileSync(cfg, ['tcp_ports: "1,11,15"', 'ban_ttl: 10m', 'block_tcp: 0', 'scan_trigger: 3', 'ttl_rules:', ...rules, ''].join('\n'));
  const r = await lab.cli(['reload']);
  assert.equal(r.code, 0, describeRun(r));
  await d.waitForLine(/^sentry-xdp: reload refused, the running config stays: .*ttl_rules: more than 4096 rules of one address family/, 5000);
  assert.deepEqual(await Promise.all(['sentry_config', 'sentry_ttl_v4', 'sentry_ports'].map(dump)), before, 'the kernel is as it was');
  const chk = await run([BIN, 'config', 'check', cfg]);
  assert.notEqual(chk.code, 0, `config check refuses it too\n${describeRun(chk)}`);
  const scan = await lab.nmap(['-sS'], '1,11,15');
  assert.deepEqual([...scan.states.keys()], ['filtered'], describeRun(scan.run));
  await d.waitForLine(new RegExp(`^attackalert: Host ${ATK4.replaceAll('.', '\\.')} has been blocked via XDP drop`), 5000);
});
