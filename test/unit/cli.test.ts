/**
 * The command line's conventions, without root: global options on either side
 * of the verb, -v/-V/--version, help with examples and exit codes, one line and
 * exit 2 for bad usage, `config defaults` accepted by `config check`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultsYaml } from '../../src/core/config-doc.js';
import { buildProgram } from '../../src/cli/program.js';
import { defineVerb, type Verb } from '../../src/cli/verb.js';
import { VERBS } from '../../src/cli/verbs/index.js';
import { statusText } from '../../src/cli/verbs/status.js';
import { banTable } from '../../src/cli/verbs/bans.js';
import { allowTable } from '../../src/cli/verbs/allow.js';
import type { Status } from '../../src/daemon/commands.js';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function cli(args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'sentry-xdp-cli-'));
  try {
    // nothing here may touch the machine: pin root, run and state dirs of our own
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      SENTRY_XDP_RUN_DIR: join(dir, 'run'),
      SENTRY_XDP_STATE_DIR: join(dir, 'state'),
      SENTRY_XDP_PIN_ROOT: join(dir, 'pins'),
    };
    delete env.SENTRY_XDP_CONFIG;
    const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env, timeout: 20_000 });
    return {
      code: r.status,
      stdout: r.stdout,
      stderr: r.stderr,
      what: `sentry-xdp ${args.join(' ')}: exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('-v, -V and --version print the version', () => {
  for (const f of ['-v', '-V', '--version']) {
    const r = cli([f]);
    assert.equal(r.code, 0, r.what);
    assert.equal(r.stdout, `${VERSION}\n`, r.what);
  }
});

test("the program's help gives the exit codes and examples; every verb's help has examples and the global options", () => {
  const r = cli(['--help']);
  assert.equal(r.code, 0, r.what);
  for (const re of [
    /^ {2}0 +ok$/m,
    /^ {2}1 +failure$/m,
    /^ {2}2 +bad usage or config$/m,
    /^ {2}130 +interrupted/m,
    /status: 0 everything protected; 1 degraded/,
    /3 nothing loaded or no daemon running/,
    /Examples:/,
  ]) {
    assert.match(r.stdout, re, r.what);
  }
  const verbs = [
    ['attach'],
    ['detach'],
    ['status'],
    ['ban'],
    ['unban'],
    ['list'],
    ['history'],
    ['top'],
    ['reload'],
    ['config'],
    ['config', 'check'],
    ['config', 'defaults'],
    ['config', 'import-portsentry'],
    ['allow'],
    ['allow', 'add'],
    ['allow', 'rm'],
    ['allow', 'list'],
  ];
  for (const v of verbs) {
    const h = cli([...v, '--help']);
    assert.equal(h.code, 0, h.what);
    assert.match(h.stdout, /\nExamples:\n {2}\$ sentry-xdp /, `${v.join(' ')} --help has examples\n${h.what}`);
    if (v.length > 1 || !['config', 'allow'].includes(v[0]!)) assert.match(h.stdout, /-c, --config <file>/, `${v.join(' ')} --help shows -c\n${h.what}`);
  }
});

test('-c works before and after the verb (config check names the file it checked)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentry-xdp-cfg-'));
  try {
    const f = join(dir, 'x.yaml');
    writeFileSync(f, 'scan_trigger: 1\n');
    for (const args of [
      ['-c', f, 'config', 'check'],
      ['config', 'check', '-c', f],
      ['config', '-c', f, 'check'],
      ['--config', f, 'config', 'check'],
    ]) {
      const r = cli(args);
      assert.equal(r.code, 0, r.what);
      assert.match(r.stdout, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ok`), r.what);
    }
    writeFileSync(f, 'scan_trigger: -1\n');
    for (const args of [
      ['-c', f, 'config', 'check'],
      ['config', 'check', '--config', f],
    ]) {
      const r = cli(args);
      assert.equal(r.code, 2, r.what);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.what);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad usage: one line on stderr, exit 2', () => {
  for (const [args, re] of [
    [['stauts'], /^sentry-xdp: unknown command 'stauts' \(did you mean status\?\); see --help$/],
    [['status', '--jsn'], /^sentry-xdp: unknown option '--jsn' \(did you mean --json\?\); see --help$/],
    [['status', '-c'], /^sentry-xdp: option '-c, --config <file>' argument missing; see --help$/],
    [['-x'], /^sentry-xdp: unknown option '-x'/],
    [['config', 'defaults', 'extra'], /^sentry-xdp: too many arguments/],
  ] as Array<[string[], RegExp]>) {
    const r = cli(args);
    assert.equal(r.code, 2, r.what);
    assert.equal(r.stdout, '', r.what);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, r.what);
    assert.match(lines[0]!, re, r.what);
  }
});

test('`config defaults` prints the generated defaults, and `config check` accepts them', () => {
  const r = cli(['config', 'defaults']);
  assert.equal(r.code, 0, r.what);
  assert.equal(r.stdout, defaultsYaml());
  const dir = mkdtempSync(join(tmpdir(), 'sentry-xdp-defaults-'));
  try {
    const f = join(dir, 'sentry.yaml');
    writeFileSync(f, r.stdout);
    const c = cli(['config', 'check', f]);
    assert.equal(c.code, 0, c.what);
    assert.match(c.stdout, /: ok/, c.what);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the program is the verbs' descriptions: every verb in order, with its arguments, options and examples", () => {
  const program = buildProgram();
  const walk = (
    verbs: readonly Verb[],
    cmds: readonly {
      name(): string;
      registeredArguments: readonly { name(): string }[];
      options: readonly { flags: string }[];
      commands: readonly unknown[];
    }[],
    path: string,
  ) => {
    assert.deepEqual(
      cmds.map((c) => c.name()),
      verbs.map((v) => v.name),
      `the verbs under "${path}"`,
    );
    verbs.forEach((v, i) => {
      const c = cmds[i]!;
      assert.ok(v.examples.length, `${path} ${v.name} has examples`);
      assert.ok(Boolean(v.run) !== Boolean(v.verbs?.length), `${path} ${v.name}: a handler, or sub-verbs, not both`);
      assert.deepEqual(
        c.registeredArguments.map((a) => a.name()),
        (v.arguments ?? []).map((a) => a.name.replace(/^[<[]|(\.\.\.)?[>\]]$/g, '')),
      );
      assert.deepEqual(
        c.options.map((o) => o.flags),
        (v.options ?? []).map((o) => o.flags),
      );
      walk(v.verbs ?? [], c.commands as typeof cmds, `${path} ${v.name}`);
    });
  };
  walk(VERBS, program.commands, 'sentry-xdp');
  assert.deepEqual(
    VERBS.map((v) => v.name),
    ['attach', 'detach', 'status', 'ban', 'unban', 'list', 'history', 'top', 'reload', 'config', 'allow'],
  );
});

test("a verb's handler gets its operands flattened, its options parsed and the global options on either side of the verb", async () => {
  const calls: { operands: string[]; opts: object; pinRoot: string; configFlag: string | undefined }[] = [];
  const fake = defineVerb<{ n?: number; json?: boolean }>({
    name: 'fake',
    summary: 'a verb for this test',
    arguments: [{ name: '[thing...]', description: 'things' }],
    options: [
      { flags: '--n <n>', description: 'a number', parse: Number },
      { flags: '--json', description: 'JSON' },
    ],
    examples: ['sentry-xdp fake a b --n 3'],
    run: (call) => {
      calls.push({ operands: call.operands, opts: call.opts, pinRoot: call.paths().pinRoot, configFlag: call.configFlag });
    },
  });
  const group = defineVerb({ name: 'group', summary: 'a group', examples: ['sentry-xdp group fake'], verbs: [fake] });
  await buildProgram([fake, group]).parseAsync(['node', 'sentry-xdp', '--pin-root', '/tmp/pins-of-test', 'fake', 'a', 'b', '--n', '3', '-c', '/tmp/x.yaml']);
  await buildProgram([fake, group]).parseAsync(['node', 'sentry-xdp', 'group', 'fake', '--json']);
  assert.deepEqual(
    calls.map(({ pinRoot: _, ...c }) => c),
    [
      { operands: ['a', 'b'], opts: { n: 3 }, configFlag: '/tmp/x.yaml' },
      { operands: [], opts: { json: true }, configFlag: undefined },
    ],
  );
  assert.equal(calls[0]!.pinRoot, '/tmp/pins-of-test');
});

test('status, list and allow list format what the daemon returns, line by line', () => {
  const down: Status = {
    pinRoot: '/p',
    config: 'built-in defaults',
    loaded: false,
    daemonPid: null,
    daemon: null,
    interfaces: [],
    counters: {},
    bansInForce: 0,
    watch: null,
    health: 'down',
    problems: [],
  };
  assert.deepEqual(statusText(down), ['sentry-xdp is not loaded (nothing pinned in /p); start it with `sentry-xdp attach IFACE`']);
  const s: Status = {
    ...down,
    loaded: true,
    daemonPid: 42,
    daemon: { bansExpired: 3, nftHealthy: false, hooks: { started: 5, failed: 1, timedOut: 0 } },
    interfaces: [
      { name: 'eth0', ifindex: 2, progId: 7, mode: 'native', stale: false, state: 'attached' },
      { name: 'ppp0', ifindex: 0, progId: 0, mode: '-', stale: false, state: 'waiting', reason: 'no such interface' },
    ],
    counters: { seen: 10, passed: 8, dropped: 2, unparsed: 1, nonIp: 0 },
    bansInForce: 1,
    watch: { tcp: [1, 2, 3, 80], udp: [], skipped: [{ proto: 'tcp', port: 22, reason: 'a local service listens there' }] },
    health: 'degraded',
    problems: ['ppp0: waiting (no such interface)'],
  };
  const lines = statusText(s);
  for (const l of [
    'pin root: /p',
    "config: built-in defaults (the daemon's; commands without -c use it)",
    'daemon: running (pid 42)',
    '  eth0             ifindex 2  native mode  program id 7',
    '  ppp0             WAITING (no such interface)',
    'watched TCP ports (4): 1-3,80',
    'watched UDP ports (0): (none)',
    'skipped TCP 22: a local service listens there',
    '  packets seen           10',
    '  alerts                 0',
    '  bans in force          1',
    '  unparsed / non-IP      1 / 0',
    '  bans expired (daemon)  3',
    '  bans evicted (cap)     0',
    '  nftables               FAILING (see the daemon log)',
    '  hooks run/failed/killed 5 / 1 / 0',
  ]) {
    assert.ok(lines.includes(l), `status has "${l}":\n${lines.join('\n')}`);
  }
  assert.equal(lines.at(-1), 'health: DEGRADED: ppp0: waiting (no such interface)');
  assert.ok(lines.indexOf('counters:') > lines.indexOf('interfaces:'));

  assert.deepEqual(banTable([]), ['no bans in force']);
  const entry = {
    target: '203.0.113.7',
    origin: 'manual' as const,
    expires: null,
    remainingSeconds: null,
    drops: 12,
    reason: 'abuse',
    probe: null,
    by: 'root',
    gateway: null,
  };
  assert.deepEqual(
    banTable([entry, { ...entry, target: '2001:db8::/48', origin: 'fleet', remainingSeconds: 600, drops: 0, reason: '', by: null, gateway: 'gw2' }]),
    [
      'TARGET         ORIGIN    EXPIRES IN   DROPS  REASON',
      '203.0.113.7    manual    permanent       12  abuse (by root)',
      '2001:db8::/48  fleet     10m              0  (from gw2)',
    ],
  );

  assert.deepEqual(allowTable([]), ['the allow list is empty']);
  assert.deepEqual(
    allowTable([
      { cidr: '10.0.0.0/8', kind: 'allow', source: 'config file' },
      { cidr: '::1', kind: 'never-ban', source: "this host's own address" },
    ]),
    ['10.0.0.0/8  allow      config file', "::1         never-ban  this host's own address"],
  );
});
