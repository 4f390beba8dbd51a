/**
 * packaging/sentry-xdp.service: systemd-analyze accepts it, and it keeps the promises the README
 * makes (a stop keeps bans enforced, reload is SIGHUP, only the capabilities XDP needs).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url)); // dist/test/unit → checkout
const unitPath = join(root, 'packaging', 'sentry-xdp.service');
const unitText = readFileSync(unitPath, 'utf8');
const checkoutBin = join(root, 'bin', 'sentry-xdp');
const dir = mkdtempSync(join(tmpdir(), 'sentry-systemd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Section → key → values, in order (a key may repeat). Comments and blank lines are skipped. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const out = new Map<string, Map<string, string[]>>();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = new Map();
      out.set(head[1]!, section);
      continue;
    }
    assert.ok(section, `key outside a section: ${line}`);
    assert.ok(!line.endsWith('\\'), `no continuation lines, please: ${line}`);
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `not a key=value line: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return out;
}

const unit = parseUnit(unitText);
const service = unit.get('Service') ?? new Map<string, string[]>();
const one = (key: string): string => {
  const v = service.get(key);
  assert.ok(v && v.length === 1, `[Service] has exactly one ${key}=`);
  return v[0]!;
};

function systemdAnalyze(args: string[]) {
  return spawnSync('systemd-analyze', args, {
    encoding: 'utf8',
    // Plain output: no pager, no colours, the default log level (warnings are what we look for).
    env: { ...process.env, SYSTEMD_PAGER: 'cat', SYSTEMD_COLORS: '0', SYSTEMD_LOG_LEVEL: 'info', LC_ALL: 'C' },
    timeout: 60_000,
  });
}

/** The unit as shipped, but with ExecStart= pointing at this checkout's launcher (verify checks it exists). */
function verifiableCopy(extra = ''): string {
  accessSync(checkoutBin, constants.X_OK);
  const text = unitText.replace(/^ExecStart=\/usr\/local\/bin\/sentry-xdp /m, `ExecStart=${checkoutBin} `);
  assert.notEqual(text, unitText, 'ExecStart=/usr/local/bin/sentry-xdp ... is in the unit');
  const path = join(dir, 'sentry-xdp.service');
  writeFileSync(path, text.replace(/^\[Service\]$/m, `[Service]${extra}`));
  return path;
}

test('systemd-analyze verify accepts the unit without a warning', (t) => {
  const probe = systemdAnalyze(['--version']);
  if (probe.error) {
    assert.fail(
      `systemd-analyze is not installed (${(probe.error as NodeJS.ErrnoException).code}): ` +
        'install the Debian package "systemd" (scripts/deps.sh does) to check packaging/sentry-xdp.service',
    );
  }
  const path = verifiableCopy();
  const r = systemdAnalyze(['verify', '--man=no', path]);
  t.diagnostic(`systemd-analyze verify exit ${r.status}; stderr: ${r.stderr.trim() || '(empty)'}`);
  const aboutUnit = (r.stderr + r.stdout).split('\n').filter((l) => l.includes(dir) || l.includes('sentry-xdp'));
  assert.deepEqual(aboutUnit, [], 'no warnings about the unit');
  assert.equal(r.status, 0, `systemd-analyze verify failed:\n${r.stderr}`);
});

test('the verify step does catch a bad unit (so the test above means something)', () => {
  if (systemdAnalyze(['--version']).error) assert.fail('systemd-analyze is not installed: install the Debian package "systemd"');
  const path = verifiableCopy('\nNoSuchDirective=1');
  const r = systemdAnalyze(['verify', '--man=no', path]);
  assert.match(r.stderr, /Unknown key 'NoSuchDirective'/);
});

test('a stop or restart keeps the bans: no ExecStop, detaching is opt-in through SENTRY_XDP_ARGS', () => {
  assert.equal(service.get('ExecStop'), undefined, 'no ExecStop=');
  assert.equal(service.get('ExecStopPost'), undefined, 'no ExecStopPost=');
  assert.equal(service.get('ExecStartPre'), undefined, 'no ExecStartPre= (a restart adopts the pins)');
  const start = one('ExecStart');
  assert.equal(start, '/usr/local/bin/sentry-xdp attach $SENTRY_XDP_IFACES $SENTRY_XDP_ARGS');
  assert.ok(!/\$\{SENTRY_XDP_(IFACES|ARGS)\}/.test(start), '${VAR} would not be split into words');
  assert.ok(!start.includes('--detach-on-exit'), 'detaching on exit is not the default');
  assert.match(unitText, /SENTRY_XDP_ARGS="--detach-on-exit"/, 'the opt-in is documented in the unit');
  assert.equal(one('EnvironmentFile'), '-/etc/default/sentry-xdp');
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('KillSignal'), 'SIGTERM');
  assert.match(one('TimeoutStopSec'), /^\d+s?$/);
});

test('reload sends SIGHUP to the daemon', () => {
  assert.match(one('ExecReload'), /^\/bin\/kill -HUP \$MAINPID$/);
});

test('only the capabilities XDP needs, and the hardening that Node tolerates', () => {
  const caps = (key: string) => one(key).split(/\s+/).sort();
  const wanted = ['CAP_BPF', 'CAP_NET_ADMIN', 'CAP_PERFMON'];
  assert.deepEqual(caps('CapabilityBoundingSet'), wanted);
  assert.deepEqual(caps('AmbientCapabilities'), wanted);
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.equal(one('LimitMEMLOCK'), 'infinity');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.deepEqual(one('ReadWritePaths').split(/\s+/), ['/sys/fs/bpf']);
  assert.equal(one('RuntimeDirectory'), 'sentry-xdp');
  assert.equal(one('StateDirectory'), 'sentry-xdp');
  for (const k of ['ProtectHome', 'PrivateTmp', 'ProtectKernelModules', 'LockPersonality', 'RestrictSUIDSGID']) {
    assert.equal(one(k), 'yes', k);
  }
  assert.deepEqual(one('RestrictAddressFamilies').split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
  assert.equal(one('SystemCallArchitectures'), 'native');
  assert.ok(one('SystemCallFilter').split(/\s+/).includes('bpf'), 'bpf() is allowed');
  assert.equal(service.get('MemoryDenyWriteExecute'), undefined, "MemoryDenyWriteExecute breaks Node's JIT");
  assert.equal(service.get('User'), undefined, 'runs as root (with the capabilities above only)');
  assert.deepEqual(unit.get('Install')?.get('WantedBy'), ['multi-user.target']);
});

test('packaging/sentry-xdp.default: only SENTRY_XDP_ variables, interfaces set', () => {
  const text = readFileSync(join(root, 'packaging', 'sentry-xdp.default'), 'utf8');
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line.trim() || line.trimStart().startsWith('#')) continue;
    const m = /^(SENTRY_XDP_[A-Z_]+)="([^"$`\\]*)"$/.exec(line);
    assert.ok(m, `not a plain KEY="value" line: ${line}`);
    vars.set(m[1]!, m[2]!);
  }
  assert.deepEqual([...vars.keys()].sort(), ['SENTRY_XDP_ARGS', 'SENTRY_XDP_IFACES']);
  assert.notEqual(vars.get('SENTRY_XDP_IFACES'), '');
  assert.equal(vars.get('SENTRY_XDP_ARGS'), '', 'no extra arguments by default (no --detach-on-exit)');
});
