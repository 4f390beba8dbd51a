/**
 * The Debian package: `make deb` builds it, dpkg installs it, the installed program runs (its
 * version, its man pages, its unit under systemd-analyze, its bash completion, and an XDP attach
 * from /usr/lib/sentry-xdp in a lab namespace), and `dpkg --purge` removes it leaving the machine
 * as it was. The maintainer scripts run with this test's own pin root, run/state directories and
 * config in their environment (they honour them as the CLI does), so the purge never touches the
 * machine's /var/lib/sentry-xdp or a real nft table.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createLab, describeRun, PATH, REPO, requireTools, run, type RunResult } from '../helpers/lab.js';

const VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const ARCH = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout?.trim() || 'amd64';
const DEB = join(REPO, 'build', `sentry-xdp_${VERSION}_${ARCH}.deb`);

/** What the package installs; none of it may be here before the test or after the purge. */
const OWNED = [
  '/usr/lib/sentry-xdp',
  '/usr/bin/sentry-xdp',
  '/lib/systemd/system/sentry-xdp.service',
  '/etc/default/sentry-xdp',
  '/usr/share/man/man8/sentry-xdp.8.gz',
  '/usr/share/man/man5/sentry-xdp.yaml.5.gz',
  '/usr/share/bash-completion/completions/sentry-xdp',
  '/usr/share/doc/sentry-xdp',
];

const scratch = mkdtempSync(join(tmpdir(), 'sentry-deb-'));
const config = join(scratch, 'sentry.yaml');
/** The environment of dpkg (and so of the maintainer scripts): this test's places, nothing of the machine's. */
const dpkgEnv: NodeJS.ProcessEnv = {
  DEBIAN_FRONTEND: 'noninteractive',
  SENTRY_XDP_PIN_ROOT: join(scratch, 'pins'),
  SENTRY_XDP_RUN_DIR: join(scratch, 'run'),
  SENTRY_XDP_STATE_DIR: join(scratch, 'state'),
  SENTRY_XDP_CONFIG: config,
};

/** What the machine has in the places a purge cleans, to check they are left as they were. */
function machineState(): string {
  return ['/var/lib/sentry-xdp', '/run/sentry-xdp', '/sys/fs/bpf/sentry-xdp']
    .map((d) => `${d}: ${existsSync(d) ? readdirSync(d).sort().join(',') : '(none)'}`)
    .join('\n');
}

const installed = () =>
  /install ok installed|config-files/.test(spawnSync('dpkg-query', ['-W', '-f=${Status}', 'sentry-xdp'], { encoding: 'utf8' }).stdout ?? '');

let weInstalled = false;
function purge(): RunResult | undefined {
  if (!weInstalled) return undefined;
  const r = spawnSync('dpkg', ['--purge', 'sentry-xdp'], { encoding: 'utf8', env: { ...process.env, PATH, ...dpkgEnv }, timeout: 180_000 });
  weInstalled = installed();
  return { cmd: 'dpkg --purge sentry-xdp', code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut: false };
}
process.once('exit', () => purge()); // a test killed by its timeout still leaves the machine clean

let before0 = '';
before(() => {
  assert.equal(process.getuid?.(), 0, 'the package test installs a Debian package: run it as root');
  requireTools('dpkg', 'dpkg-deb', 'man', 'systemd-analyze', 'nsenter', 'ip');
  assert.ok(!installed(), 'sentry-xdp is installed on this machine (dpkg -s sentry-xdp); this test installs and purges it: run it where it is not installed');
  const present = OWNED.filter((p) => existsSync(p));
  assert.deepEqual(present, [], `files the package would own exist already (${present.join(', ')}); this test would replace and remove them`);
  writeFileSync(config, 'nft: { enabled: false, table: sx_debtest }\n');
  before0 = machineState();
});

after(() => {
  try {
    const r = purge();
    if (r) assert.equal(r.code, 0, `dpkg --purge failed\n${describeRun(r)}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

/** The .deb, rebuilt unless one newer than everything that goes into it is there. */
function newest(paths: string[]): number {
  let t = 0;
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const s = statSync(p);
    t = Math.max(t, s.mtimeMs);
    if (s.isDirectory()) t = Math.max(t, newest(readdirSync(p).map((n) => join(p, n))));
  }
  return t;
}

test('make deb builds the package: production code only, one koffi binary, the files and relations it needs', { timeout: 300_000 }, async () => {
  const inputs = ['dist/src', 'build/libsentry_shim.so', 'build/sentry.bpf.o', 'package.json', 'scripts/build-deb.sh', 'packaging', 'dist/scripts'].map((p) =>
    join(REPO, p),
  );
  if (!existsSync(DEB) || statSync(DEB).mtimeMs < newest(inputs)) {
    const r = await run(['make', '-s', '-C', REPO, 'deb'], { timeoutMs: 280_000 });
    assert.equal(r.code, 0, `make deb failed\n${describeRun(r)}`);
  }
  assert.ok(existsSync(DEB), `${DEB} was not built`);
  const info = spawnSync('dpkg-deb', ['-f', DEB, 'Package', 'Version', 'Architecture', 'Depends', 'Recommends'], { encoding: 'utf8' }).stdout;
  assert.match(info, /^Package: sentry-xdp$/m);
  assert.match(info, new RegExp(`^Version: ${VERSION.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(info, new RegExp(`^Architecture: ${ARCH}$`, 'm'));
  for (const dep of ['nodejs (>= 20', 'libbpf1', 'libnetfilter-conntrack3', 'nftables', 'iproute2'])
    assert.ok(info.includes(dep), `Depends names ${dep}:\n${info}`);
  assert.match(info, /^Recommends: .*redis-server/m);

  const files = spawnSync('dpkg-deb', ['-c', DEB], { encoding: 'utf8', maxBuffer: 64 << 20 })
    .stdout.split('\n')
    .map((l) => l.replace(/^.*?\.\//, '/').replace(/ -> .*$/, ''))
    .filter(Boolean);
  for (const f of [
    '/usr/bin/sentry-xdp',
    '/usr/lib/sentry-xdp/dist/src/cli/main.js',
    '/usr/lib/sentry-xdp/build/sentry.bpf.o',
    '/usr/lib/sentry-xdp/build/sentry_noct.bpf.o',
    '/usr/lib/sentry-xdp/build/libsentry_shim.so',
    '/usr/lib/sentry-xdp/package.json',
    '/lib/systemd/system/sentry-xdp.service',
    '/etc/default/sentry-xdp',
    '/usr/share/man/man8/sentry-xdp.8.gz',
    '/usr/share/man/man5/sentry-xdp.yaml.5.gz',
    '/usr/share/bash-completion/completions/sentry-xdp',
  ]) {
    assert.ok(files.includes(f), `the package holds ${f}`);
  }
  const bad = files.filter((f) => /\/dist\/(test|bench|scripts)\/|\.ts$|\.map$|\/node_modules\/(typescript|@types)\//.test(f));
  assert.deepEqual(bad, [], 'no TypeScript, source maps, tests, benchmarks or dev dependencies in the package');
  const koffiArchs = new Set(files.map((f) => /node_modules\/koffi\/build\/koffi\/([^/]+)\//.exec(f)?.[1]).filter(Boolean));
  assert.equal(koffiArchs.size, 1, `one koffi binary, for this architecture (found: ${[...koffiArchs].join(', ')})`);
});

test('dpkg -i installs it: the launcher, the man pages, the unit, the completion, and XDP from /usr/lib/sentry-xdp', { timeout: 240_000 }, async (t) => {
  assert.ok(existsSync(DEB), 'the package was built by the test above');
  const i = await run(['dpkg', '-i', DEB], { env: dpkgEnv, timeoutMs: 180_000 });
  weInstalled = installed();
  if (i.code !== 0) {
    // missing dependencies: let apt bring them (they are installed on the test machines)
    const f = await run(['apt-get', 'install', '-f', '-y', '-q'], { env: dpkgEnv, timeoutMs: 180_000 });
    weInstalled = installed();
    assert.equal(f.code, 0, `dpkg -i failed and apt-get install -f could not fix it\n${describeRun(i)}\n${describeRun(f)}`);
  }
  assert.ok(weInstalled, `sentry-xdp is installed\n${describeRun(i)}`);
  assert.match(i.stdout, /sentry-xdp: not enabled: name the interfaces in \/etc\/default\/sentry-xdp/, `postinst says how to enable it\n${describeRun(i)}`);
  assert.match(readFileSync('/etc/default/sentry-xdp', 'utf8'), /^SENTRY_XDP_IFACES=""$/m, 'no interface is named by the package');

  const v = await run(['/usr/bin/sentry-xdp', '--version']);
  assert.equal(v.code, 0, describeRun(v));
  assert.equal(v.stdout.trim(), VERSION);

  const m8 = await run(['man', '-w', 'sentry-xdp']);
  assert.equal(m8.stdout.trim(), '/usr/share/man/man8/sentry-xdp.8.gz', describeRun(m8));
  const m5 = await run(['man', '-w', '5', 'sentry-xdp.yaml']);
  assert.equal(m5.stdout.trim(), '/usr/share/man/man5/sentry-xdp.yaml.5.gz', describeRun(m5));
  const page = await run(['man', '-P', 'cat', 'sentry-xdp'], { env: { MANWIDTH: '100', LC_ALL: 'C.UTF-8' } });
  assert.match(page.stdout, /EXIT STATUS/, describeRun(page));

  const unit = '/lib/systemd/system/sentry-xdp.service';
  assert.match(readFileSync(unit, 'utf8'), /^ExecStart=\/usr\/bin\/sentry-xdp attach \$SENTRY_XDP_IFACES \$SENTRY_XDP_ARGS$/m);
  const va = await run(['systemd-analyze', 'verify', '--man=no', unit], { env: { SYSTEMD_PAGER: 'cat', SYSTEMD_COLORS: '0', LC_ALL: 'C' } });
  t.diagnostic(`systemd-analyze verify exit ${va.code}; stderr: ${va.stderr.trim() || '(empty)'}`);
  assert.deepEqual(
    (va.stderr + va.stdout).split('\n').filter((l) => l.includes('sentry-xdp')),
    [],
    `systemd-analyze verify has nothing to say about the installed unit\n${describeRun(va)}`,
  );
  assert.equal(va.code, 0, describeRun(va));

  const comp = await run([
    'bash',
    '-c',
    'source /usr/share/bash-completion/completions/sentry-xdp && complete -p sentry-xdp && COMP_WORDS=(sentry-xdp sta) COMP_CWORD=1 && _sentry_xdp && echo "${COMPREPLY[@]}"',
  ]);
  assert.equal(comp.code, 0, describeRun(comp));
  assert.match(comp.stdout, /complete -F _sentry_xdp sentry-xdp\nstatus\n/, describeRun(comp));

  // the installed tree loads and attaches the XDP program (the objects and the shim under /usr/lib/sentry-xdp)
  requireTools('nsenter', 'ip');
  const lab = createLab(t);
  const cfg = lab.writeConfig('deb.yaml', `nft: { enabled: false }\n`);
  const a = await lab.gw(['/usr/bin/sentry-xdp', 'attach', lab.gwIf, '--no-daemon', '--config', cfg], { timeoutMs: 30_000 });
  assert.equal(a.code, 0, `attach from the package\n${describeRun(a)}`);
  assert.match(a.stdout, new RegExp(`attached to ${lab.gwIf} in \\w+ mode`), describeRun(a));
  const d = await lab.gw(['/usr/bin/sentry-xdp', 'detach', '--all', '--config', cfg]);
  assert.equal(d.code, 0, describeRun(d));
  await lab.teardown();
});

test('dpkg --purge removes it all and leaves the machine as it was', { timeout: 200_000 }, () => {
  // state as a daemon leaves it, where this test pointed the package
  for (const d of ['state', 'run']) {
    mkdirSync(join(scratch, d), { recursive: true });
    writeFileSync(join(scratch, d, 'bans.jsonl'), '');
  }
  const r = purge();
  assert.ok(r, 'the package was installed by the test above');
  assert.equal(r.code, 0, `dpkg --purge failed\n${describeRun(r)}`);
  assert.ok(!installed(), 'dpkg no longer knows sentry-xdp');
  const left = OWNED.filter((p) => existsSync(p));
  assert.deepEqual(left, [], 'nothing of the package is left');
  for (const d of ['state', 'run']) assert.ok(!existsSync(join(scratch, d)), `postrm purge removed the ${d} directory it was pointed at`);
  assert.equal(machineState(), before0, "the machine's own sentry-xdp directories are untouched");
});
