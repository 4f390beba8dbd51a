import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCidr } from '../../src/core/addr.js';
import { defaultConfig } from '../../src/core/config.js';
import { HELD_ADDRESS_MS, mergeHeld, parseFibTrieLocal, parseIfInet6, parseResolvConf, parseRouteV4, parseRouteV6 } from '../../src/core/host-facts.js';
import { checkProtected } from '../../src/daemon/bans.js';
import { MAX_LINE, readBanFile, TargetCollector, v4Cidr } from '../../src/daemon/ban-file.js';
import { kernelLists, protectedList } from '../../src/daemon/protect.js';
import { ALLOW, NEVER_BAN } from '../../src/core/abi.js';

test('resolv.conf and routing tables give the never-ban facts', () => {
  assert.deepEqual(parseResolvConf('# x\nnameserver 198.18.0.53\nsearch lan\nnameserver fe80::1%eth0\n'), ['198.18.0.53', 'fe80::1']);
  const route = 'Iface\tDestination\tGateway \tFlags\n eth0\t00000000\t0100A8C0\t0003\n eth0\t0000A8C0\t00000000\t0001\n';
  assert.deepEqual(parseRouteV4(route), ['192.168.0.1']);
  const r6 =
    '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n';
  assert.deepEqual(parseRouteV6(r6), ['fe80:0000:0000:0000:0000:0000:0000:0001']);
});

test('the host, its gateways and resolvers are protected; a ban covering them is refused', () => {
  const cfg = { ...defaultConfig(), allow: ['10.9.0.0/16'] };
  const prot = protectedList(cfg, { addresses: ['198.18.0.1'], gateways: ['198.18.0.254'], nameservers: ['198.18.0.53'] }, ['192.0.2.7']);
  assert.throws(() => checkProtected([parseCidr('198.18.0.1')], prot), /refusing to ban 198\.18\.0\.1: it is this host's own address/);
  assert.throws(() => checkProtected([parseCidr('198.18.0.0/24')], prot), /covers 198\.18\.0\.1, which is this host's own address/);
  assert.throws(() => checkProtected([parseCidr('198.18.0.53')], prot), /nameserver/);
  assert.throws(() => checkProtected([parseCidr('10.9.3.3')], prot), /allow list/);
  assert.throws(() => checkProtected([parseCidr('192.0.2.7')], prot), /allow list/);
  checkProtected([parseCidr('203.0.113.9'), parseCidr('2001:db8::/48')], prot);
  assert.throws(() => checkProtected([], prot, [0x0a090303]), /refusing to ban 10\.9\.3\.3: it is on the allow list/, 'packed IPv4 addresses are checked too');
  const k = kernelLists(prot);
  assert.equal(k.get('198.18.0.1')!.value, NEVER_BAN);
  assert.equal(k.get('10.9.0.0/16')!.value, ALLOW);
});

test('bulk files: comments and blank lines are fine; one bad line refuses the whole file and names it; a line without end is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentry-xdp-banfile-'));
  try {
    const file = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    const read = async (path: string) => {
      const c = new TargetCollector();
      await readBanFile(path, c);
      return c.done();
    };
    const l = await read(file('f', '# list\n1.2.3.4\n\n2001:db8::/48  # v6\n1.2.3.4\n0.0.0.9\n'));
    assert.deepEqual(
      [...l.v4].map((n) => v4Cidr(n).text),
      ['0.0.0.9', '1.2.3.4'],
      'exact IPv4 packed, sorted, de-duplicated',
    );
    assert.deepEqual(
      l.others.map((c) => c.text),
      ['2001:db8::/48'],
    );
    await assert.rejects(
      read(file('bans.txt', '1.2.3.4\n1.2.3.4/33\n5.6.7.8\n')),
      /bans\.txt:2: "1\.2\.3\.4\/33" is not a valid IP address or CIDR; nothing was banned$/,
    );
    await assert.rejects(read(file('empty.txt', '# only comments\n\n')), /empty\.txt: no addresses in it; nothing was banned/);
    await assert.rejects(read(file('zero', '1.2.3.4\n' + '\0'.repeat(MAX_LINE + 10))), /zero: a line longer than 4096 characters; nothing was banned/);
    await assert.rejects(read(join(dir, 'missing')), /missing: cannot read it \(ENOENT\); nothing was banned/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("this host's addresses from /proc: fib_trie LOCAL leaves (kept while a link is down) and if_inet6 (tentative ones too)", () => {
  const trie = [
    'Main:',
    '  +-- 0.0.0.0/0 3 0 5',
    '     |-- 198.18.7.0',
    '        /24 link UNICAST',
    '     |-- 198.18.7.1',
    '        /32 host LOCAL',
    '     |-- 198.18.7.255',
    '        /32 link BROADCAST',
    'Local:',
    '     |-- 127.0.0.0',
    '        /8 host LOCAL',
    '     |-- 198.18.7.1',
    '        /32 host LOCAL',
    '',
  ].join('\n');
  assert.deepEqual(parseFibTrieLocal(trie), ['198.18.7.1']);
  const inet6 = '20010db8007800000000000000000001 03 40 00 c0     hbv0\nfe800000000000007401fafffe462b69 03 40 20 80     hbv0\n';
  assert.deepEqual(
    parseIfInet6(inet6).map((a) => parseCidr(a).text),
    ['2001:db8:78::1', 'fe80::7401:faff:fe46:2b69'],
  );
});

test('addresses this host held lately stay on the never-ban list (a link that goes down loses its IPv6 addresses)', () => {
  const t0 = 1_000_000_000_000;
  const first = mergeHeld({}, ['198.18.0.1', '2001:db8::1'], t0);
  assert.deepEqual(first, { '198.18.0.1': t0, '2001:db8::1': t0 });
  const down = mergeHeld(first, ['198.18.0.1'], t0 + 60_000);
  assert.deepEqual(Object.keys(down).sort(), ['198.18.0.1', '2001:db8::1'], 'the flushed IPv6 address is still held');
  assert.equal(down['198.18.0.1'], t0 + 60_000);
  const later = mergeHeld(down, ['198.18.0.1'], t0 + HELD_ADDRESS_MS + 1);
  assert.deepEqual(Object.keys(later), ['198.18.0.1'], 'forgotten once not seen for the whole period');
  assert.deepEqual(mergeHeld({ junk: Number.NaN }, [], t0), {}, 'a garbled file is no harm');
});
