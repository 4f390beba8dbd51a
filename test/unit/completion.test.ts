/**
 * scripts/gen-completion.ts: the bash completion, run in a real bash with COMP_WORDS/COMP_CWORD
 * as bash sets them, completes verbs, sub-verbs, each verb's options, choices and interfaces.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadProgram, walkCommands } from '../../scripts/cli-program.js';
import { completionScript } from '../../scripts/gen-completion.js';

const dir = mkdtempSync(join(tmpdir(), 'sentry-completion-'));
const file = join(dir, 'sentry-xdp');
let verbs: string[] = [];
after(() => rmSync(dir, { recursive: true, force: true }));
before(async () => {
  const program = await loadProgram();
  verbs = program.commands.map((c) => c.name());
  assert.ok(walkCommands(program).length > verbs.length, 'the program has sub-verbs (config, allow)');
  writeFileSync(file, completionScript(program));
});

/** What bash completes for `words`, the last being the word under the cursor. */
function complete(...words: string[]): string[] {
  const script = `source ${JSON.stringify(file)} || exit 9
COMP_WORDS=(${['sentry-xdp', ...words].map((w) => `'${w}'`).join(' ')})
COMP_CWORD=${words.length}
_sentry_xdp
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, `bash failed: ${r.stderr}`);
  assert.equal(r.stderr, '', 'no errors from the completion function');
  return r.stdout.split('\n').filter(Boolean);
}

test('the script is valid bash and registers a completion for sentry-xdp', () => {
  const n = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
  assert.equal(n.status, 0, n.stderr);
  const r = spawnSync('bash', ['--norc', '-c', `source ${JSON.stringify(file)} && complete -p sentry-xdp`], { encoding: 'utf8' });
  assert.equal(r.stdout.trim(), 'complete -F _sentry_xdp sentry-xdp');
});

test('verbs and sub-verbs', () => {
  assert.deepEqual(complete(''), verbs);
  assert.deepEqual(complete('de'), ['detach']);
  assert.deepEqual(complete('config', ''), ['check', 'defaults', 'import-portsentry']);
  assert.deepEqual(complete('allow', 'r'), ['rm']);
});

test("each verb's options, after the global ones too", () => {
  assert.deepEqual(complete('ban', '--t'), ['--ttl']);
  assert.deepEqual(complete('detach', '--a'), ['--all']);
  assert.deepEqual(complete('--pin-root', '/tmp/x', 'attach', '--detach'), ['--detach-on-exit']);
  assert.deepEqual(complete('status', '--st'), ['--state-dir'], 'global options are offered after a verb');
  assert.deepEqual(complete('config', 'import-portsentry', '--ig'), ['--ignore']);
  assert.ok(!complete('status', '--').includes('--ttl'), "status does not offer ban's --ttl");
});

test('option values: choices; and interface names for attach and detach', () => {
  assert.deepEqual(complete('attach', '--mode', 'n'), ['native']);
  assert.deepEqual(
    complete('attach', '--mode', 'native', 'l'),
    readdirSync('/sys/class/net')
      .filter((n) => n.startsWith('l'))
      .sort(),
  );
  assert.ok(complete('detach', '').includes('lo'), 'detach offers the interfaces of /sys/class/net');
  assert.deepEqual(complete('ban', '--ttl', ''), [], 'a TTL is not guessed');
});
