/**
 * scripts/gen-man.ts: the man pages come from buildProgram() and the config schema, so every verb,
 * every option and every config key is in them, with the sections an admin looks for.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Command } from 'commander';
import { loadProgram, walkCommands } from '../../scripts/cli-program.js';
import { configKeys, manPage5, manPage8, roff } from '../../scripts/gen-man.js';

let program: Command;
let page8 = '';
let page5 = '';
const dir = mkdtempSync(join(tmpdir(), 'sentry-man-'));
after(() => rmSync(dir, { recursive: true, force: true }));
before(async () => {
  program = await loadProgram();
  page8 = manPage8(program, '9.9.9');
  page5 = manPage5('9.9.9');
});

test('loading the program for the generators leaves argv, exit and stdout as they were', () => {
  assert.equal(typeof process.exit, 'function');
  assert.ok(!process.argv.includes('--version'));
  assert.equal(program.name(), 'sentry-xdp');
});

test('sentry-xdp(8) has every verb of buildProgram(), with its options', () => {
  const cmds = walkCommands(program);
  assert.ok(cmds.length >= 10, `buildProgram() has its verbs (${cmds.length})`);
  for (const { path, cmd } of cmds) {
    assert.ok(page8.includes(`.SS \\fB${roff(`sentry-xdp ${path.join(' ')}`)}\\fR`), `a section for "sentry-xdp ${path.join(' ')}"`);
    for (const o of cmd.options) assert.ok(page8.includes(roff(o.flags)), `"${path.join(' ')}" option ${o.flags}`);
  }
  for (const o of program.options) assert.ok(page8.includes(roff(o.flags)), `global option ${o.flags}`);
});

test('sentry-xdp(8) has NAME, SYNOPSIS, EXIT STATUS (status 0/1/3), ENVIRONMENT, FILES and SEE ALSO', () => {
  for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'EXIT STATUS', 'ENVIRONMENT', 'FILES', 'SEE ALSO'])
    assert.match(page8, new RegExp(`^\\.SH ${s}$`, 'm'), s);
  const exit = page8.slice(page8.indexOf('.SH EXIT STATUS'), page8.indexOf('.SH ENVIRONMENT'));
  for (const code of ['0', '1', '2', '130', '3']) assert.ok(exit.includes(`\\fB${code}\\fR`), `exit status ${code}`);
  for (const v of ['SENTRY_XDP_PIN_ROOT', 'SENTRY_XDP_RUN_DIR', 'SENTRY_XDP_STATE_DIR', 'SENTRY_XDP_CONFIG']) assert.ok(page8.includes(roff(v)), v);
  assert.match(page8, /^\.TH SENTRY\\-XDP 8 .*"sentry\\-xdp 9\.9\.9"/m);
});

test('sentry-xdp.yaml(5) has every key of the config schema with its default', () => {
  const keys = configKeys();
  assert.ok(keys.some((k) => k.key === 'ban_ttl') && keys.some((k) => k.key === 'escalation.lookback'));
  for (const { key } of keys) assert.ok(page5.includes(roff(key)), `key ${key}`);
  assert.match(page5, /\\fBban_ttl\\fR \(duration\), default \\fB1h\\fR/);
  assert.match(page5, /\\fBnft\.table\\fR \(string\), default \\fBsentry_xdp\\fR/);
});

test('both pages format without a groff warning', (t) => {
  const probe = spawnSync('groff', ['--version'], { encoding: 'utf8' });
  if (probe.error) assert.fail('groff is not installed: install man-db (scripts/deps.sh does) to check the man pages');
  for (const [name, text] of [
    ['sentry-xdp.8', page8],
    ['sentry-xdp.yaml.5', page5],
  ] as const) {
    const f = join(dir, name);
    writeFileSync(f, text);
    const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-Wbreak', '-z', f], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    t.diagnostic(`${name}: groff exit ${r.status}`);
    const warnings = r.stderr.split('\n').filter(Boolean); // -Wbreak: a long literal (the default port list) may overrun the line
    assert.deepEqual(warnings, [], `${name}: groff warnings`);
  }
});
