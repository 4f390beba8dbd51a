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
    [
      'tcp_ports: "1,11,6000-6002"',
      'udp_ports: [161, "500-501"]',
      'advanced: { tcp: 1024, exclude_tcp: "113" }',
      'scan_trigger: 2',
      'block_udp: false',
      'ban_ttl: 10m',
      'scan_window: 30s',
    ].join('\n'),
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
    assert.throws(
      () => parseConfig(text, 'sentry.yaml'),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'CONFIG');
        assert.match(e.message, re);
        assert.ok(!e.message.includes('\n'), 'one line');
        return true;
      },
      text,
    );
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

/** The one line parseConfig throws for `text`. */
function configError(text: string): string {
  try {
    parseConfig(text, 'c.yaml');
  } catch (e) {
    const err = e as Error & { code?: string };
    assert.equal(err.code, 'CONFIG', err.message);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return err.message;
  }
  assert.fail(`accepted: ${text}`);
}

test('every duration has a range, in text and in seconds: at least 1s, at most 3650d, narrower where it matters', () => {
  const cases: Array<[string, RegExp]> = [
    ['ban_ttl: 100000000d\n', /^c\.yaml:1: ban_ttl: "100000000d" is longer than 3650d, the most it can be \(use at most 3650d, or permanent\)$/],
    ['ban_ttl: 1000000000000\n', /^c\.yaml:1: ban_ttl: .*longer than 3650d/],
    ['ban_ttl: -1\n', /^c\.yaml:1: ban_ttl: .*at least 1s/],
    ['ban_ttl: 1.5\n', /^c\.yaml:1: ban_ttl: .*at least 1s/],
    ['ttl_rules:\n  - { cidr: 10.0.0.0/8, ttl: 9999999w }\n', /^c\.yaml:2: ttl_rules\.0\.ttl: .*longer than 3650d/],
    ['escalation:\n  max: 4000d\n', /escalation\.max: .*longer than 3650d/],
    ['escalation:\n  lookback: 0\n', /escalation\.lookback: .*at least 1s/],
    ['scan_window: 0\n', /^c\.yaml:1: scan_window: "0" must be at least 1s/],
    ['scan_window: "0s"\n', /scan_window: .*at least 1s/],
    ['scan_window: 2d\n', /scan_window: .*longer than 1d/],
    ['notify:\n  interval: 0\n', /notify\.interval: .*at least 1s/],
    ['notify:\n  timeout: 2h\n', /notify\.timeout: .*longer than 1h/],
    ['hooks:\n  timeout: 30d\n', /hooks\.timeout: .*longer than 1h/],
  ];
  for (const [text, re] of cases) assert.match(configError(text), re, text);
  assert.equal(parseConfig('ban_ttl: 0\n', 'c.yaml').ban_ttl, 0, 'a bare 0 is permanent, as before');
  assert.equal(parseConfig('ban_ttl: 3650d\nscan_window: 90\n', 'c.yaml').ban_ttl, 3650 * 86400);
  assert.equal(parseConfig('scan_window: 90\n', 'c.yaml').scan_window, 90);
});

test('syslog settings are checked by the schema (config check), not after attaching', () => {
  assert.match(configError('syslog:\n  facility: nonsense\n'), /^c\.yaml:2: syslog\.facility: unknown facility; use one of kern, user/);
  assert.match(configError('syslog:\n  facility: toString\n'), /syslog\.facility: unknown facility/);
  assert.match(configError('syslog:\n  tag: "a b"\n'), /syslog\.tag: not a program name/);
  assert.match(configError(`syslog:\n  path: /${'x'.repeat(120)}\n`), /syslog\.path: not a unix socket path/);
  assert.match(configError('syslog:\n  path: dev/log\n'), /syslog\.path: /);
  assert.equal(parseConfig('syslog:\n  facility: LOCAL3\n', 'c.yaml').syslog.facility, 'local3');
});

test('addresses in config lists are strict: no integers, no shorthands, no zone ids', () => {
  assert.match(configError('allow: ["0"]\n'), /allow\.0: "0" is not a valid IP address/);
  assert.match(configError('allow: [10]\n'), /allow\.0: /);
  assert.match(configError('never_ban:\n  cidrs: ["0x7f000001"]\n'), /never_ban\.cidrs\.0: /);
  assert.match(configError('protect:\n  networks: ["10/8"]\n'), /protect\.networks\.0: /);
  assert.match(configError('allow: ["fe80::1%eth0"]\n'), /allow\.0: "fe80::1%eth0" has an IPv6 zone id/);
});

test('the other numbers have sane ranges too', () => {
  const cases: Array<[string, RegExp]> = [
    ['redis:\n  sentinels: [{ host: a, port: 70000 }]\n', /redis\.sentinels\.0\.port: /],
    ['redis:\n  cluster: [{ host: a, port: 0 }]\n', /redis\.cluster\.0\.port: /],
    ['redis:\n  buffer: 1000000000000\n', /redis\.buffer: /],
    ['redis:\n  maxlen: 1e15\n', /redis\.maxlen: /],
    ['history:\n  max_bytes: 1e18\n', /history\.max_bytes: /],
    ['escalation:\n  factor: .inf\n', /escalation\.factor: /],
    ['notify:\n  webhook: "ftp://example.net/x"\n', /notify\.webhook: must be an http or https URL/],
    ['notify:\n  urgent: [{}]\n', /notify\.urgent\.0: an urgent rule with no condition/],
    ['hooks:\n  kill_route: "/sbin/route add \'$TARGET$"\n', /hooks\.kill_route: hook template: unterminated ' quote/],
  ];
  for (const [text, re] of cases) assert.match(configError(text), re, text);
  const big = Array.from({ length: 4097 }, (_, i) => `10.${i >> 8}.${i & 255}.1`);
  assert.match(configError(`never_ban:\n  cidrs: ${JSON.stringify(big)}\n`), /never_ban\.cidrs: at most 4096/);
});
