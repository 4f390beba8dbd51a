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

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const MAIN = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function cli(args: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'sentry-xdp-cli-'));
  try {
    // nothing here may touch the machine: pin root, run and state dirs of our own
    const env: NodeJS.ProcessEnv = { ...process.env, SENTRY_XDP_RUN_DIR: join(dir, 'run'), SENTRY_XDP_STATE_DIR: join(dir, 'state'), SENTRY_XDP_PIN_ROOT: join(dir, 'pins') };
    delete env.SENTRY_XDP_CONFIG;
    const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env, timeout: 20_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, what: `sentry-xdp ${args.join(' ')}: exit ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}` };
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

test('the program\'s help gives the exit codes and examples; every verb\'s help has examples and the global options', () => {
  const r = cli(['--help']);
  assert.equal(r.code, 0, r.what);
  for (const re of [/^ {2}0 +ok$/m, /^ {2}1 +failure$/m, /^ {2}2 +bad usage or config$/m, /^ {2}130 +interrupted/m, /status: 0 everything protected; 1 degraded/, /3 nothing loaded or no daemon running/, /Examples:/]) {
    assert.match(r.stdout, re, r.what);
  }
  const verbs = [['attach'], ['detach'], ['status'], ['ban'], ['unban'], ['list'], ['history'], ['top'], ['reload'], ['config'], ['config', 'check'], ['config', 'defaults'], ['config', 'import-portsentry'], ['allow'], ['allow', 'add'], ['allow', 'rm'], ['allow', 'list']];
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
    for (const args of [['-c', f, 'config', 'check'], ['config', 'check', '-c', f], ['config', '-c', f, 'check'], ['--config', f, 'config', 'check']]) {
      const r = cli(args);
      assert.equal(r.code, 0, r.what);
      assert.match(r.stdout, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ok`), r.what);
    }
    writeFileSync(f, 'scan_trigger: -1\n');
    for (const args of [['-c', f, 'config', 'check'], ['config', 'check', '--config', f]]) {
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
