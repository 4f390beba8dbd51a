import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandSyntaxError, commandWords, firstWordRaw, lexCommand, renderScript, type LexOptions } from '../../src/core/command-lexer.js';

const hook: LexOptions = { tokens: ['TARGET', 'PORT'], shell: true };
const plain: LexOptions = { tokens: ['SUBJECT'], shell: false };
const values = { TARGET: '1.2.3.4', PORT: '23', SUBJECT: 'a b; c' };
const q = (s: string): string => `<${s}>`;

const words = (t: string, o: LexOptions): string[] => commandWords(lexCommand(t, o), values);

test('both modes share the quoting: quotes removed, escapes resolved, tokens substituted inside words', () => {
  const t = `/x 'a b' "c \\"d\\" \\$e \\\`f\\\` \\\\ \\g" h\\ i pre$TARGET$post '$PORT$' "" \\\n j`;
  const expected = ['/x', 'a b', 'c "d" $e `f` \\ \\g', 'h i', 'pre1.2.3.4post', '23', '', 'j'];
  assert.deepEqual(words(t, hook), expected);
  assert.equal(lexCommand(t, hook).needsShell, undefined);
  assert.deepEqual(words(t.replaceAll('TARGET', 'SUBJECT').replaceAll('PORT', 'SUBJECT'), plain), [
    '/x',
    'a b',
    'c "d" $e `f` \\ \\g',
    'h i',
    'prea b; cpost',
    'a b; c',
    '',
    'j',
  ]);
});

test('an escaped token still substitutes; sh keeps the backslash only inside "..."', () => {
  assert.deepEqual(words('/bin/echo \\$TARGET$ "\\$PORT$"', hook), ['/bin/echo', '1.2.3.4', '\\23']);
});

test('shell mode says why a template needs /bin/sh; plain mode reads the same characters as text', () => {
  const cases: [string, RegExp][] = [
    ['a | b', /"\|"/],
    ['a > f', /">"/],
    ['echo $HOME', /\$ expansion/],
    ['echo "$(id)"', /\$ expansion/],
    ['echo `id`', /command/],
    ['echo x # c', /comment/],
    ['cat <<EOF\nx\nEOF', /here-document/],
    ['a\nb', /"\\n"/],
    ['ls *', /"\*"/],
  ];
  for (const [t, why] of cases) {
    assert.match(lexCommand(t, hook).needsShell ?? '', why, t);
    assert.equal(lexCommand(t, plain).needsShell, undefined, t);
  }
  assert.deepEqual(words('mail a|b>c $x `y` #z', plain), ['mail', 'a|b>c', '$x', '`y`', '#z']);
  assert.deepEqual(words('a\nb', plain), ['a', 'b'], 'a newline separates words when no shell runs');
  assert.deepEqual(words('a\rb', plain), ['a\rb'], 'only blanks separate: space, tab, newline');
});

test('a # starts a comment only at the start of a word, as in sh', () => {
  assert.equal(lexCommand('/bin/echo a#b', hook).needsShell, undefined);
  assert.equal(lexCommand('/bin/echo a\\ #b', hook).needsShell, undefined, 'an escaped blank does not end the word');
  assert.deepEqual(words('/bin/echo a\\ #b', hook), ['/bin/echo', 'a #b']);
  assert.equal(lexCommand('/bin/echo a\\\n#b', hook).needsShell, undefined, 'nor does a line continuation');
  assert.equal(lexCommand('/bin/echo \\\n#c', hook).needsShell, 'a comment', 'a line continuation keeps the word start');
});

test('as a script: raw text, tokens quoted only in plain unquoted text', () => {
  const t = `echo $TARGET$ "$TARGET$" '$PORT$' $(echo $PORT$) \${X:-$PORT$} \\$TARGET$ $$PORT$ # $TARGET$`;
  const lexed = lexCommand(t, hook);
  assert.equal(renderScript(lexed, values, q), `echo <1.2.3.4> "1.2.3.4" '23' $(echo <23>) \${X:-23} \\1.2.3.4 $23 # 1.2.3.4`);
});

test('here-document bodies take tokens bare; the text after the delimiter line is plain again', () => {
  const t = `cat <<-'END' <<EOF\n\t$TARGET$ '$PORT$'\n\tEND\n"$PORT$"\nEOF\necho $TARGET$`;
  assert.equal(renderScript(lexCommand(t, hook), values, q), `cat <<-'END' <<EOF\n\t1.2.3.4 '23'\n\tEND\n"23"\nEOF\necho <1.2.3.4>`);
});

test('firstWordRaw: the first word as written, for VAR=value detection', () => {
  assert.equal(firstWordRaw(lexCommand('  FOO=$TARGET$ /bin/env x', hook)), 'FOO=');
  assert.equal(firstWordRaw(lexCommand("'FOO=bar' x", hook)), "'FOO=bar'");
  assert.equal(firstWordRaw(lexCommand('$PORT$ X=1', hook)), '', 'a word of tokens only is still the first word');
});

test('syntax errors: unterminated quotes, command substitution, a lone trailing backslash', () => {
  for (const [t, o] of [
    ["a 'b", hook],
    ['a "b', hook],
    ['a `b', hook],
    ['a \\', hook],
    ["a 'b", plain],
    ['a "b\\', plain],
    ['a \\', plain],
  ] as const) {
    assert.throws(() => lexCommand(t, o), CommandSyntaxError, JSON.stringify(t));
  }
  assert.equal(lexCommand('a | b \\', hook).needsShell, 'the shell character "|"', 'sh reads a trailing backslash literally');
  assert.deepEqual(words('a `b', plain), ['a', '`b']);
});
