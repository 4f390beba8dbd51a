import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { parseConfig, type Config } from '../../src/core/config.js';
import { planHook } from '../../src/core/hook-command.js';
import { deriveUnbanCommand, dottedMaskToPrefix, importPortsentry, parseModes, type ImportInput, type ImportResult } from '../../src/core/portsentry-import.js';
import { SentryError } from '../../src/errors.js';

// dist/test/unit → the repository's test/fixtures (fixtures are not copied into dist)
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/portsentry/', import.meta.url));
const fixture = (name: string) => readFileSync(`${FIXTURES}${name}`, 'utf8');

function run(conf: string, extra: Partial<ImportInput> = {}): { r: ImportResult; c: Config } {
  const r = importPortsentry({ conf: fixture(conf), confName: conf, ...extra });
  return { r, c: parseConfig(r.yaml, 'imported.yaml') };
}

/** The ports in KEY="..." as a sorted list, read independently of the importer. */
function portsIn(text: string, key: string): number[] {
  const m = new RegExp(`^${key}="([^"]*)"`, 'm').exec(text);
  assert.ok(m, `${key} in fixture`);
  return [...new Set(m[1]!.split(',').map(Number))].sort((a, b) => a - b);
}

const noteFor = (r: ImportResult, key: string, re: RegExp) => r.notes.find((n) => n.key === key && re.test(n.message));

const GENTOO_KILL_ROUTE = '/sbin/iptables -I INPUT -s $TARGET$ -j DROP && echo "$TARGET$:$PORT$" >> /var/log/portsentry.block.log';
const GANYMEDE_KILL_RUN_CMD =
  "(/usr/bin/whois $TARGET$) | /usr/bin/mailx -s 'Ganymede banned $TARGET$ for scanning port $PORT$'alarms@mail.domain.com; /etc/portsentry/temp_ban_length $TARGET$ $PORT$;";

test('the Gentoo portsentry.conf (seed 002) imports into a config that validates', () => {
  const text = fixture('gentoo.conf');
  const { r, c } = run('gentoo.conf');
  assert.deepEqual(c.tcp_ports, portsIn(text, 'TCP_PORTS'));
  assert.deepEqual(c.udp_ports, portsIn(text, 'UDP_PORTS'));
  assert.equal(c.tcp_ports.length, 45);
  // no --modes: every mode the file configures, advanced ones included
  assert.deepEqual(r.modes, ['tcp', 'udp', 'stcp', 'sudp', 'atcp', 'audp']);
  assert.ok(noteFor(r, 'modes', /no --modes given/));
  assert.equal(c.advanced.tcp, 65355);
  assert.equal(c.advanced.udp, 65355);
  assert.deepEqual(c.advanced.exclude_tcp, [80, 113, 139]);
  assert.deepEqual(c.advanced.exclude_udp, [67, 137, 138, 520]);
  assert.equal(c.block_tcp, 2);
  assert.equal(c.block_udp, 2);
  assert.equal(c.scan_trigger, 0);
  assert.equal(c.ban_ttl, 3600);
  assert.deepEqual(c.allow, []);
  // the command with inner quotes survives byte for byte
  assert.equal(c.hooks.kill_route, GENTOO_KILL_ROUTE);
  assert.equal(c.hooks.unban_cmd, '/sbin/iptables -D INPUT -s $TARGET$ -j DROP');
  assert.equal(c.hooks.kill_hosts_deny, ''); // commented out in the file
  assert.equal(c.hooks.kill_run_cmd, '');
  assert.ok(noteFor(r, 'KILL_ROUTE', /stopped reading at the second quote/));
  assert.ok(noteFor(r, 'BLOCK_TCP', /KILL_RUN_CMD, which is not set/));
  assert.ok(noteFor(r, 'PORT_BANNER', /no equivalent/));
  assert.ok(noteFor(r, 'HISTORY_FILE', /journal/));
  assert.ok(noteFor(r, 'BLOCKED_FILE', /no equivalent/));
  assert.ok(noteFor(r, 'IGNORE_FILE', /pass --ignore FILE/));
  assert.ok(noteFor(r, 'ban_ttl', /never expired.*ban_ttl: permanent/));
  // RESOLVE_HOST = "0" (spaces around =) becomes resolve_host
  assert.match(r.yaml, /^resolve_host: false$/m);
  // every note with a line points at the line holding that setting
  const lines = text.split('\n');
  for (const n of r.notes.filter((x) => x.line > 0 && /^[A-Z_]+$/.test(x.key))) {
    assert.match(lines[n.line - 1]!, new RegExp(`^${n.key}\\s*=`), `note on line ${n.line}: ${n.message}`);
  }
});

test('the YAML says where it came from and names the PortSentry setting above each key', () => {
  const { r } = run('gentoo.conf', { ignore: fixture('unc.ignore'), ignoreName: 'portsentry.ignore' });
  const lines = r.yaml.split('\n');
  assert.match(lines[0]!, /^# sentry-xdp configuration imported from gentoo\.conf and portsentry\.ignore$/);
  const above = (key: string) => lines[lines.findIndex((l) => l.startsWith(key)) - 1]!;
  assert.match(above('tcp_ports:'), /^# TCP_PORTS \(line 1\)/);
  assert.match(above('udp_ports:'), /^# UDP_PORTS \(line 2\)/);
  assert.match(above('scan_trigger:'), /^# SCAN_TRIGGER \(line 80\)/);
  assert.match(above('block_tcp:'), /^# BLOCK_TCP \(line 24\)/);
  assert.match(above('allow:'), /^# IGNORE_FILE \(line 17\) = \/etc\/portsentry\/portsentry\.ignore, read from portsentry\.ignore/);
  assert.match(above('  kill_route:'), /^ {2}# KILL_ROUTE \(line 26\)/);
  assert.match(above('ban_ttl:'), /ban_ttl: permanent/);
  // the notes are repeated at the end, as comments
  for (const n of r.notes) assert.ok(r.yaml.includes(n.message), n.message);
  // and everything that is not a comment is plain YAML
  assert.equal(typeof parseYaml(r.yaml), 'object');
});

test('seed 000: the port lists (40421 rejoined) and the ipchains KILL_ROUTE, which is kept as a comment', () => {
  const text = fixture('unc.conf');
  const { r, c } = run('unc.conf');
  assert.deepEqual(c.tcp_ports, portsIn(text, 'TCP_PORTS'));
  assert.ok(c.tcp_ports.includes(40421));
  assert.deepEqual(c.udp_ports, portsIn(text, 'UDP_PORTS'));
  assert.deepEqual(r.modes, ['tcp', 'udp', 'stcp', 'sudp']);
  assert.equal(c.advanced.tcp, 0);
  assert.equal(c.hooks.kill_route, '');
  assert.ok(noteFor(r, 'KILL_ROUTE', /ipchains.*commented out/));
  // uncommenting the line gives back the command byte for byte
  const commented = r.yaml.split('\n').find((l) => l.startsWith('# kill_route: '));
  assert.ok(commented);
  assert.equal(parseYaml(commented.slice(2)).kill_route, '/sbin/ipchains -I input -s $TARGET$ -j DENY -l');
  // BLOCK_* are not in the fragment: PortSentry then only logged
  assert.equal(c.block_tcp, 0);
  assert.ok(noteFor(r, 'BLOCK_TCP', /not set.*only logged/));
});

test('seed 000 as printed: the wrapped TCP_PORTS line is reported with its line numbers, the rest imports', () => {
  const { r, c } = run('unc-wrapped.conf');
  const at3 = r.notes.find((n) => n.line === 3);
  const at4 = r.notes.find((n) => n.line === 4);
  assert.ok(at3 && at3.key === 'TCP_PORTS' && /no closing double quote/.test(at3.message), JSON.stringify(at3));
  assert.ok(at4 && /not a KEY="value" line/.test(at4.message), JSON.stringify(at4));
  assert.equal(at3.file, 'unc-wrapped.conf');
  assert.deepEqual(c.udp_ports, portsIn(fixture('unc-wrapped.conf'), 'UDP_PORTS'));
  assert.deepEqual(c.tcp_ports, []);
});

test('seed 000 as logged: route and hosts.deny blocking, with the route undone at the unban', () => {
  const { r, c } = run('unc-as-logged.conf', { ignore: fixture('unc.ignore'), ignoreName: 'portsentry.ignore' });
  assert.equal(c.hooks.kill_route, '/sbin/route add -host $TARGET$ reject');
  assert.equal(c.hooks.unban_cmd, '/sbin/route del -host $TARGET$ reject');
  assert.equal(c.hooks.kill_hosts_deny, 'ALL: $TARGET$');
  assert.ok(noteFor(r, 'KILL_HOSTS_DENY', /removes it when the ban ends/));
  assert.equal(c.block_tcp, 1);
  assert.equal(c.block_udp, 1);
  assert.deepEqual(c.allow, ['127.0.0.1', '0.0.0.0', '152.2.38.210']);
  const zero = r.notes.find((n) => n.file === 'portsentry.ignore' && n.line === 4);
  assert.ok(zero && /0\.0\.0\.0.*kept/.test(zero.message), JSON.stringify(zero));
});

test("seed 004: KILL_RUN_CMD survives byte for byte and the daemon's hook planner accepts it", () => {
  const { r, c } = run('ganymede.conf');
  assert.equal(c.hooks.kill_run_cmd, GANYMEDE_KILL_RUN_CMD);
  assert.equal(c.hooks.kill_run_cmd_first, false);
  assert.equal(planHook(c.hooks.kill_run_cmd, { target: '203.0.113.9', port: 23, mode: 'tcp' }).kind, 'shell');
  assert.equal(planHook(c.hooks.kill_route, { target: '203.0.113.9', port: 23, mode: 'tcp' }).kind, 'argv');
  assert.equal(c.hooks.unban_cmd, '/sbin/iptables -D INPUT -s $TARGET$ -j DROP');
  assert.ok(noteFor(r, 'KILL_RUN_CMD', /hooks\.timeout.*ttl_rules/));
  assert.match(r.yaml, /^resolve_host: true$/m);
  assert.ok(!r.notes.some((n) => /cannot run this command/.test(n.message)));
});

test('--modes atcp,sudp: advanced TCP range instead of the TCP list, the UDP list, no advanced UDP', () => {
  const text = fixture('ganymede.conf');
  const { r, c } = run('ganymede.conf', { modes: ['atcp', 'sudp'] });
  assert.deepEqual(r.modes, ['atcp', 'sudp']);
  assert.equal(c.advanced.tcp, 1024);
  assert.deepEqual(c.advanced.exclude_tcp, [113, 139]);
  assert.deepEqual(c.tcp_ports, []); // PortSentry -atcp ignores TCP_PORTS
  assert.ok(noteFor(r, 'TCP_PORTS', /not imported: in mode atcp/));
  assert.deepEqual(c.udp_ports, portsIn(text, 'UDP_PORTS'));
  assert.equal(c.advanced.udp, 0);
  assert.ok(noteFor(r, 'ADVANCED_PORTS_UDP', /off because mode audp was not selected/));
  assert.ok(!noteFor(r, 'modes', /no --modes given/));
  assert.match(r.yaml, /^# PortSentry modes: atcp, sudp \(from --modes\)$/m);
});

test('--modes: tcp,udp turns advanced mode off; tcp with atcp watches both; UDP only leaves TCP empty', () => {
  const text = fixture('gentoo.conf');
  const classic = run('gentoo.conf', { modes: ['tcp', 'udp'] });
  assert.equal(classic.c.advanced.tcp, 0);
  assert.equal(classic.c.advanced.udp, 0);
  assert.deepEqual(classic.c.tcp_ports, portsIn(text, 'TCP_PORTS'));
  assert.ok(noteFor(classic.r, 'ADVANCED_PORTS_TCP', /advanced TCP mode is off/));
  assert.ok(noteFor(classic.r, 'modes', /stealth/));

  const both = run('gentoo.conf', { modes: ['-stcp', 'ATCP'] });
  assert.deepEqual(both.r.modes, ['stcp', 'atcp']);
  assert.deepEqual(both.c.tcp_ports, portsIn(text, 'TCP_PORTS'));
  assert.equal(both.c.advanced.tcp, 65355);
  assert.deepEqual(both.c.udp_ports, []);

  const udpOnly = run('gentoo.conf', { modes: ['sudp'] });
  assert.deepEqual(udpOnly.c.tcp_ports, []);
  assert.deepEqual(udpOnly.c.udp_ports, portsIn(text, 'UDP_PORTS'));
  assert.ok(noteFor(udpOnly.r, 'TCP_PORTS', /no TCP mode .* selected/));

  // an advanced mode without its ADVANCED_PORTS_* gets PortSentry's default
  const adv = run('unc.conf', { modes: ['atcp'] });
  assert.equal(adv.c.advanced.tcp, 1024);
  assert.ok(noteFor(adv.r, 'ADVANCED_PORTS_TCP', /default of 1024/));
});

test('parseModes takes comma lists and dashes, and rejects anything else with one line', () => {
  assert.deepEqual(parseModes('atcp,sudp'), ['atcp', 'sudp']);
  assert.deepEqual(parseModes(['-tcp', 'udp,tcp']), ['tcp', 'udp']);
  for (const bad of ['xtcp', 'tcp,ftp', '']) {
    assert.throws(
      () => parseModes(bad),
      (e: unknown) => e instanceof SentryError && e.code === 'USAGE' && !e.message.includes('\n'),
    );
  }
  assert.throws(() => importPortsentry({ conf: fixture('unc.conf'), confName: 'x', modes: ['stealth'] }), /not a PortSentry mode/);
});

test('ignore files: dotted masks become prefix lengths, unusable entries become notes with line numbers', () => {
  const { r, c } = run('ganymede.conf', { ignore: fixture('ganymede.ignore'), ignoreName: 'portsentry.ignore.static' });
  assert.deepEqual(c.allow, ['127.0.0.1', '0.0.0.0', '152.2.0.0/16', '123.45.67.0/24', '89.91.23.0/24', '45.67.78.91']);
  const ig = (line: number) => r.notes.filter((n) => n.file === 'portsentry.ignore.static' && n.line === line).map((n) => n.message);
  assert.ok(ig(8).some((m) => /host bits set.*89\.91\.23\.0\/24/.test(m)));
  assert.ok(ig(8).some((m) => /trailing words are ignored/.test(m)));
  assert.ok(ig(11).some((m) => /mail\.domain\.com.*not an address/.test(m)));
  assert.ok(ig(12).some((m) => /255\.0\.255\.0.*not a netmask/.test(m)));
  assert.ok(ig(13).some((m) => /300\.1\.2\.3/.test(m)));
  // conf notes first, then the ignore file's
  const firstIgnore = r.notes.findIndex((n) => n.file !== 'ganymede.conf');
  assert.ok(firstIgnore > 0 && r.notes.slice(firstIgnore).every((n) => n.file === 'portsentry.ignore.static'));

  // entries that would allow everyone, IPv6, duplicates
  const r2 = importPortsentry({
    conf: 'TCP_PORTS="1"\n',
    confName: 'p.conf',
    ignore: '0.0.0.0/0\n10.0.0.0/0.0.0.0\n2001:db8::/32\n10.1.0.0/16\n10.1.0.0/255.255.0.0\n',
    ignoreName: 'i',
  });
  assert.deepEqual(parseConfig(r2.yaml, 'x.yaml').allow, ['2001:db8::/32', '10.1.0.0/16']);
  assert.equal(r2.notes.filter((n) => /allow every source/.test(n.message)).length, 2);
  assert.ok(r2.notes.some((n) => n.line === 5 && /already listed on line 4/.test(n.message)));
});

test('dottedMaskToPrefix', () => {
  const cases: Array<[string, number | undefined]> = [
    ['255.255.255.0', 24],
    ['255.255.255.255', 32],
    ['255.255.255.128', 25],
    ['255.0.0.0', 8],
    ['0.0.0.0', 0],
    ['255.0.255.0', undefined],
    ['255.255.255.1', undefined],
    ['256.0.0.0', undefined],
    ['24', undefined],
  ];
  for (const [mask, want] of cases) assert.equal(dottedMaskToPrefix(mask), want, mask);
});

test('broken and odd lines give notes with their line numbers; the usable settings still import', () => {
  const conf = [
    '# a comment', //                             1
    'TCP_PORTS="1,abc,70000,0,22, 23"', //        2
    'THIS LINE IS BROKEN', //                     3
    'UDP_PORTS="7,9', //                          4
    'SCAN_TRIGGER=2', //                          5
    'FROB="1"', //                                6
    'tcp_ports="5"', //                           7
    'TCP_PORTS="99"', //                          8
    '', //                                        9
    '   BLOCK_TCP = "3"   # odd', //              10
    'KILL_RUN_CMD="echo \'a\' "b" \\%c $TARGET$" trailing', // 11
    'KILL_RUN_CMD_FIRST="1"', //                  12
  ].join('\r\n');
  const r = importPortsentry({ conf, confName: 'odd.conf', modes: ['tcp'] });
  const c = parseConfig(r.yaml, 'imported.yaml');
  const at = (line: number) =>
    r.notes
      .filter((n) => n.line === line)
      .map((n) => n.message)
      .join(' | ');
  assert.deepEqual(c.tcp_ports, [1, 22, 23]);
  assert.match(at(2), /dropped "abc", "70000", "0"/);
  assert.match(at(3), /not a KEY="value" line/);
  assert.match(at(4), /no closing double quote/);
  assert.equal(c.scan_trigger, 2);
  assert.match(at(5), /not in double quotes/);
  assert.match(at(5), /scan_trigger: 1/);
  assert.match(at(6), /FROB: not a PortSentry setting/);
  assert.match(at(7), /did you mean TCP_PORTS/);
  assert.match(at(8), /PortSentry uses the first one \(line 2\)/);
  assert.equal(c.block_tcp, 0);
  assert.match(at(10), /not 0, 1 or 2/);
  assert.equal(c.hooks.kill_run_cmd, 'echo \'a\' "b" \\%c $TARGET$');
  assert.match(at(11), /text after the closing quote ignored/);
  assert.equal(c.hooks.kill_run_cmd_first, true);
  for (const n of r.notes) assert.ok(!n.message.includes('\n'));
});

test('a file that is not a portsentry.conf throws one line naming it', () => {
  const inputs = [
    readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8'),
    'tcp_ports: "1,2"\nban_ttl: 1h\n',
    '',
    'FOO="bar"\nTCP_PORTS="1,2\n',
    '\u0000\u0001ELF binary',
  ];
  for (const conf of inputs) {
    assert.throws(
      () => importPortsentry({ conf, confName: 'some.file' }),
      (e: unknown) => e instanceof SentryError && e.code === 'CONFIG' && /^some\.file: not a portsentry\.conf/.test(e.message) && !e.message.includes('\n'),
      JSON.stringify(conf.slice(0, 30)),
    );
  }
});

test('deriveUnbanCommand undoes plain iptables and route commands only', () => {
  const cases: Array<[string, string | undefined]> = [
    ['/sbin/iptables -I INPUT -s $TARGET$ -j DROP', '/sbin/iptables -D INPUT -s $TARGET$ -j DROP'],
    ['iptables -I INPUT 1 -s $TARGET$ -j DROP', 'iptables -D INPUT -s $TARGET$ -j DROP'],
    ['ip6tables -w -t raw -A PREROUTING -s $TARGET$ -j DROP', 'ip6tables -w -t raw -D PREROUTING -s $TARGET$ -j DROP'],
    ['/sbin/route add -host $TARGET$ reject', '/sbin/route del -host $TARGET$ reject'],
    ['ip route add blackhole $TARGET$', 'ip route del blackhole $TARGET$'],
    [GENTOO_KILL_ROUTE, '/sbin/iptables -D INPUT -s $TARGET$ -j DROP'],
    ['logger banned; iptables -I INPUT -s $TARGET$ -j DROP', undefined],
    ['/sbin/ipchains -I input -s $TARGET$ -j DENY -l', undefined],
    ['/usr/local/bin/block "$TARGET$"', undefined],
  ];
  for (const [cmd, want] of cases) assert.equal(deriveUnbanCommand(cmd), want, cmd);
});

test('the importer is pure: no I/O imports', () => {
  const src = readFileSync(fileURLToPath(new URL('../../src/core/portsentry-import.js', import.meta.url)), 'utf8');
  const imports = [...src.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
  assert.ok(imports.length > 0);
  for (const i of imports) assert.ok(!/^(node:|fs$|child_process$|net$)/.test(i!), i);
});
