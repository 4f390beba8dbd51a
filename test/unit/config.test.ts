import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig, parseConfig } from '../../src/core/config.js';

test('no config at all gives PortSentry defaults: aware lists (less the ephemeral range), trigger 0, blocking, 1h bans, this host protected', () => {
  const c = defaultConfig();
  assert.equal(c.tcp_ports.length, 19);
  assert.equal(c.udp_ports.length, 13);
  assert.ok(c.tcp_ports.every((p) => p < 32768) && c.udp_ports.every((p) => p < 32768), 'no default port where replies land');
  assert.deepEqual(c.protect, { networks: [], services: [] });
  assert.equal(c.scan_trigger, 0);
  assert.equal(c.block_tcp, 1);
  assert.equal(c.block_udp, 1);
  assert.equal(c.ban_ttl, 3600);
  assert.equal(c.advanced.tcp, 0);
});

test('a config sets ports, ranges, advanced mode, trigger, blocking and TTL', () => {
  const c = parseConfig(
    ['tcp_ports: "1,11,6000-6002"', 'udp_ports: [161, "500-501"]', 'advanced: { tcp: 1024, exclude_tcp: "113" }', 'scan_trigger: 2', 'block_udp: false', 'ban_ttl: 10m', 'scan_window: 30s'].join('\n'),
    'x.yaml',
  );
  assert.deepEqual(c.tcp_ports, [1, 11, 6000, 6001, 6002]);
  assert.deepEqual(c.udp_ports, [161, 500, 501]);
  assert.equal(c.advanced.tcp, 1024);
  assert.deepEqual(c.advanced.exclude_tcp, [113]);
  assert.equal(c.scan_trigger, 2);
  assert.equal(c.block_udp, 0);
  assert.equal(c.ban_ttl, 600);
  assert.equal(c.scan_window, 30);
});

test('errors name the file, the line and the key', () => {
  const cases: Array<[string, RegExp]> = [
    ['scan_trigger: 1\ntcp_ports: "1,99999"\n', /^sentry\.yaml:2: tcp_ports: .*99999/],
    ['ban_ttl: 10x\n', /^sentry\.yaml:1: ban_ttl: "10x" is not a duration/],
    ['tcp_prots: "1"\n', /^sentry\.yaml:1: unknown key tcp_prots/],
    ['scan_trigger: [\n', /^sentry\.yaml:\d+: YAML syntax error/],
    ['advanced:\n  tcp: -1\n', /^sentry\.yaml:2: advanced\.tcp: /],
    ['- 1\n- 2\n', /^sentry\.yaml: expected a mapping/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => parseConfig(text, 'sentry.yaml'), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'CONFIG');
      assert.match(e.message, re);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    }, text);
  }
});

test('an empty file is the defaults', () => {
  assert.deepEqual(parseConfig('', 'e.yaml'), defaultConfig());
});

test('sweep_trigger: 16 by default, 0 turns sweeps off, at most 256 (the kernel keeps 512 bits a source)', () => {
  assert.equal(defaultConfig().sweep_trigger, 16);
  assert.equal(parseConfig('sweep_trigger: 0\n', 's.yaml').sweep_trigger, 0);
  assert.throws(() => parseConfig('sweep_trigger: 300\n', 's.yaml'), /s\.yaml:1: sweep_trigger: /);
  assert.throws(() => parseConfig('sweep_trigger: -1\n', 's.yaml'), /s\.yaml:1: sweep_trigger: /);
});
