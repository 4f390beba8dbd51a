import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configWarnings, parseConfig } from '../../src/core/config.js';
import { networkOf, parseService, serviceWarnings, servicePorts } from '../../src/core/destinations.js';
import { parseCidr } from '../../src/core/addr.js';

test('services: an address or network, a port or range, a protocol; IPv6 with or without brackets', () => {
  const rows: Array<[string, string, number, number]> = [
    ['198.19.0.10:143/tcp', '198.19.0.10:143/tcp', 143, 143],
    ['198.19.0.0/24:161/udp', '198.19.0.0/24:161/udp', 161, 161],
    ['198.19.0.7/24:161/UDP', '198.19.0.0/24:161/udp', 161, 161],
    ['2001:db8:1::10:443/tcp', '[2001:db8:1::10]:443/tcp', 443, 443],
    ['[2001:db8:1::10]:443/tcp', '[2001:db8:1::10]:443/tcp', 443, 443],
    ['[2001:db8:1::]/64:8000-8010/tcp', '[2001:db8:1::]/64:8000-8010/tcp', 8000, 8010],
  ];
  for (const [input, text, lo, hi] of rows) {
    const s = parseService(input);
    assert.equal(s.text, text, input);
    assert.equal(s.lo, lo);
    assert.equal(s.hi, hi);
  }
  assert.equal(servicePorts(rows.map((r) => parseService(r[0]))), 5 + 11);
});

test('bad services are refused with what to write', () => {
  for (const bad of [
    '198.19.0.10:143',
    '198.19.0.10/tcp',
    '198.19.0.300:143/tcp',
    '198.19.0.10:0/tcp',
    '198.19.0.10:70000/tcp',
    '198.19.0.10:90-80/udp',
    '198.19.0.0/33:1/tcp',
    'x:1/sctp',
  ]) {
    assert.throws(() => parseService(bad), /is not a service/, bad);
  }
  assert.throws(
    () => parseConfig('protect:\n  services: ["198.19.0.10:143"]\n', 'g.yaml'),
    /g\.yaml:2: protect\.services\.0: "198\.19\.0\.10:143" is not a service/,
  );
  assert.throws(() => parseConfig('protect:\n  networks: [198.19.0.0/33]\n', 'g.yaml'), /g\.yaml:2: protect\.networks\.0: /);
  assert.throws(() => parseConfig('protect:\n  nets: []\n', 'g.yaml'), /unknown key nets/);
  assert.throws(() => parseConfig('protect:\n  services: ["198.19.0.0/24:1-20000/tcp"]\n', 'g.yaml'), /more than 16384 service ports/);
});

test('a config with the gateway keys parses to canonical forms', () => {
  const c = parseConfig('protect:\n  networks: [198.19.0.0/24, "2001:db8:1::/64"]\n  services: ["198.19.0.10:143/tcp", "2001:db8:1::10:443/tcp"]\n', 'g.yaml');
  assert.deepEqual(c.protect, { networks: ['198.19.0.0/24', '2001:db8:1::/64'], services: ['198.19.0.10:143/tcp', '[2001:db8:1::10]:443/tcp'] });
  assert.deepEqual(configWarnings(c, [32768, 60999]), []);
});

test('warnings: a service outside every protected network, watched ports where replies land', () => {
  const c = parseConfig(
    'tcp_ports: "1,32771"\nadvanced: { udp: 40000 }\nprotect:\n  networks: [198.19.0.0/24]\n  services: ["198.20.0.1:80/tcp", "198.19.0.10:143/tcp"]\n',
    'g.yaml',
  );
  const w = configWarnings(c, [32768, 60999]);
  assert.equal(w.length, 3, w.join('\n'));
  assert.match(w[0]!, /TCP port\(s\) 32771 lie inside the ephemeral range/);
  assert.match(w[1]!, /^advanced\.udp: 40000 reaches into the ephemeral range/);
  assert.match(w[2]!, /198\.20\.0\.1:80\/tcp lies in no network of protect\.networks and holds no address of this host/);
  assert.deepEqual(serviceWarnings([parseCidr('198.19.0.0/16')], [parseService('198.19.0.0/24:1/tcp')]), []);
  assert.deepEqual(configWarnings(c, [32768, 60999], ['198.20.0.1']).length, 2, 'a service on one of our addresses is a port forward (DNAT)');
});

test('an alert is labelled with the most specific protected network it lies in', () => {
  assert.equal(networkOf('198.19.0.99', ['198.19.0.0/16', '198.19.0.0/24']), '198.19.0.0/24');
  assert.equal(networkOf('2001:db8:1::9', ['2001:db8:1::/64']), '2001:db8:1::/64');
  assert.equal(networkOf('198.20.0.1', ['198.19.0.0/16']), undefined);
});
