import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { describeHook, planHook, shQuote, type HookTokens } from '../../src/core/hook-command.js';

const tk: HookTokens = { target: '1.2.3.4', port: 23, mode: 'tcp' };

const isUsage = (e: unknown): boolean => {
  const err = e as Error & { code?: string };
  return err.code === 'USAGE' && !err.message.includes('\n');
};

const sh = (script: string): string => execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });

/** What PortSentry does: replace the tokens in the text, hand the result to a shell. */
const portsentryText = (template: string, t: HookTokens): string =>
  template.replaceAll('$TARGET$', t.target).replaceAll('$PORT$', String(t.port)).replaceAll('$MODE$', t.mode);

test('seed KILL_ROUTE (Gentoo wiki) plans to a shell script with the token quoted outside and bare inside "..."', () => {
  const plan = planHook('/sbin/iptables -I INPUT -s $TARGET$ -j DROP && echo "$TARGET$:$PORT$" >> /var/log/portsentry.block.log', tk);
  assert.deepEqual(plan, {
    kind: 'shell',
    script: `/sbin/iptables -I INPUT -s '1.2.3.4' -j DROP && echo "1.2.3.4:23" >> /var/log/portsentry.block.log`,
  });
});

test("seed KILL_RUN_CMD (whois | mailx; temp_ban_length) plans to a shell script; inside '...' the value is bare", () => {
  const plan = planHook(
    "(/usr/bin/whois $TARGET$) | /usr/bin/mailx -s 'Ganymede banned $TARGET$ for scanning port $PORT$' alarms@mail.domain.com; /etc/portsentry/temp_ban_length $TARGET$ $PORT$;",
    tk,
  );
  assert.deepEqual(plan, {
    kind: 'shell',
    script:
      "(/usr/bin/whois '1.2.3.4') | /usr/bin/mailx -s 'Ganymede banned 1.2.3.4 for scanning port 23' alarms@mail.domain.com; /etc/portsentry/temp_ban_length '1.2.3.4' '23';",
  });
});

test('IPv6 and CIDR targets are quoted the same way', () => {
  const plan = planHook('ip6tables -I INPUT -s $TARGET$ -j DROP; logger "ban $TARGET$ $MODE$"', { target: '2001:db8::/48', port: 0, mode: 'manual' });
  assert.deepEqual(plan, { kind: 'shell', script: `ip6tables -I INPUT -s '2001:db8::/48' -j DROP; logger "ban 2001:db8::/48 manual"` });
});

test('templates without shell syntax become argv: no shell runs at all', () => {
  assert.deepEqual(planHook('/bin/echo $TARGET$ $PORT$', tk), { kind: 'argv', argv: ['/bin/echo', '1.2.3.4', '23'] });
  assert.deepEqual(planHook('/some/path/here/script $TARGET$ $PORT$', tk), { kind: 'argv', argv: ['/some/path/here/script', '1.2.3.4', '23'] });
  assert.deepEqual(planHook(`/x 'a b' "c $TARGET$"`, tk), { kind: 'argv', argv: ['/x', 'a b', 'c 1.2.3.4'] });
  assert.deepEqual(planHook(`  /x\ta\\ b "q\\"uote" '' pre$TARGET$/$PORT$post $MODE$  `, tk), {
    kind: 'argv',
    argv: ['/x', 'a b', 'q"uote', '', 'pre1.2.3.4/23post', 'tcp'],
  });
  // metacharacters inside quotes are just text
  assert.deepEqual(planHook(`logger -t sentry 'a | b; c > d' "x & y"`, tk), { kind: 'argv', argv: ['logger', '-t', 'sentry', 'a | b; c > d', 'x & y'] });
  // an escaped token still substitutes, as PortSentry's text replacement would (sh keeps "\\" before a digit)
  assert.deepEqual(planHook('/bin/echo \\$TARGET$ "\\$PORT$"', tk), { kind: 'argv', argv: ['/bin/echo', '1.2.3.4', '\\23'] });
});

test('shell syntax, variables, builtins and assignments need a shell', () => {
  for (const t of [
    '/bin/echo $TARGET$ | logger',
    '/bin/echo $TARGET$ > /tmp/x',
    'a && b',
    'a; b',
    '(a)',
    '/bin/echo $HOME',
    '/bin/echo "$HOME"',
    '/bin/echo `id`',
    '/bin/echo *',
    '/bin/echo ~/x',
    'a\nb',
    'exit 3',
    'cd /tmp',
    'FOO=$TARGET$ /bin/env',
    '/bin/echo x # comment',
  ]) {
    assert.equal(planHook(t, tk).kind, 'shell', t);
  }
  assert.equal(planHook("'FOO=bar' x", tk).kind, 'argv'); // a quoted word is not an assignment in sh either
  assert.equal(planHook('/bin/echo a#b', tk).kind, 'argv'); // # inside a word is not a comment
});

test('invalid tokens are refused with one USAGE line', () => {
  const targets = [
    '1.2.3.4;touch /tmp/pwned',
    '$(id)',
    '`id`',
    '1.2.3.4 ',
    ' 1.2.3.4',
    '1.2.3.4\ntouch /tmp/pwned',
    "1.2.3.4' ; touch 'x",
    '300.1.1.1',
    '1.2.3.4/32', // not canonical: parseCidr prints 1.2.3.4
    '203.0.113.9/24', // host bits set
    '2001:DB8::1', // not canonical: lower case
    'fe80::1%eth0',
    'example.com',
    '',
  ];
  for (const target of targets) {
    assert.throws(() => planHook('/bin/echo $TARGET$', { ...tk, target }), isUsage, JSON.stringify(target));
  }
  for (const port of [70000, -1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => planHook('/bin/echo $PORT$', { ...tk, port }), isUsage, String(port));
  }
  assert.throws(() => planHook('/bin/echo $PORT$', { ...tk, port: '23' as unknown as number }), isUsage);
  for (const mode of ['tcp;ls', 'TCP', '', 'tcp ', 'sctp']) {
    assert.throws(() => planHook('/bin/echo $MODE$', { ...tk, mode }), isUsage, mode);
  }
  // tokens are checked even when the template does not use them
  assert.throws(() => planHook('/bin/true', { ...tk, target: '$(id)' }), isUsage);
  for (const mode of ['tcp', 'udp', 'atcp', 'audp', 'stcp', 'sudp', 'manual']) planHook('/bin/true', { ...tk, mode });
});

test('bad templates are refused with one USAGE line', () => {
  for (const t of ['', '   ', "/x 'open", '/x "open', 'echo "$TARGET$ | cat', 'a\0b', '/x \\', 'echo `id']) {
    assert.throws(() => planHook(t, tk), isUsage, JSON.stringify(t));
  }
});

test('describeHook gives one line', () => {
  assert.equal(describeHook({ kind: 'argv', argv: ['/bin/echo', '1.2.3.4', 'a b'] }), "/bin/echo 1.2.3.4 'a b'");
  assert.equal(describeHook({ kind: 'shell', script: "echo 'x'\necho y" }), "/bin/sh -c 'echo '\\''x'\\''\\necho y'");
});

// The quoting rule, checked against the real /bin/sh: for every template our script prints exactly what
// PortSentry's plain text substitution prints, in every quoting context.
const equivalenceTemplates = [
  `printf '%s\\n' $TARGET$ && printf '%s\\n' "$TARGET$:$PORT$"`,
  `(printf 'whois %s\\n' $TARGET$) | cat; printf '%s\\n' 'Ganymede banned $TARGET$ for scanning port $PORT$'; printf '[%s] [%s]\\n' $TARGET$ $PORT$;`,
  `printf '<%s>' $(( $PORT$ + 1 )) "\${UNSET_X:-$TARGET$}" \${UNSET_X:-$TARGET$} "$(printf %s $TARGET$)" $(printf %s "$TARGET$") \`printf %s $MODE$\` "\`printf %s $PORT$\`" \\$TARGET$ "\\$TARGET$" $$TARGET$ # it's $TARGET$`,
  `cat <<EOF\nhost $TARGET$ 'q' "$PORT$" $MODE$\nEOF\ncat <<-'END'\n\t'$TARGET$'\n\tEND\nprintf '%s\\n' $TARGET$`,
  `case $MODE$ in tcp|manual) printf 'T %s %s\\n' $PORT$ $TARGET$;; *) printf 'other %s %s\\n' $MODE$ "$TARGET$";; esac`,
  `for x in $TARGET$ $PORT$; do printf '<%s>' "$x"; done; echo`,
  `X=$TARGET$; Y="$TARGET$/$PORT$"; printf '%s %s %s\\n' "$X" $X "$Y"`,
  `printf '<%s>' "'$TARGET$'" '"$TARGET$"' "a"$TARGET$"b" --src=$TARGET$ "$(printf %s "$(printf %s $TARGET$)")"; { printf '{%s}' $PORT$; }; echo # "quote's $MODE$`,
  `v=$(cat <<EOF
$TARGET$ '$PORT$'
EOF
); printf '%s|' "$v" $TARGET$; echo`,
  // these two need no shell: argv must still match what sh makes of PortSentry's text
  `printf '%s\\n' $TARGET$:$PORT$ "$TARGET$"'$PORT$'$MODE$ a$TARGET$b`,
  `printf '[%s]' 'a b' "c $TARGET$" a\\ b \\$TARGET$ "\\$PORT$" "" x"y"'z'`,
];
const equivalenceTokens: HookTokens[] = [
  { target: '1.2.3.4', port: 23, mode: 'tcp' },
  { target: '2001:db8::1', port: 65535, mode: 'manual' },
  { target: '2001:db8::/48', port: 0, mode: 'sudp' },
  { target: '203.0.113.0/24', port: 8080, mode: 'atcp' },
];

test('plans print what PortSentry would print (its text substitution under the real /bin/sh)', () => {
  const kinds = new Set<string>();
  for (const template of equivalenceTemplates) {
    for (const t of equivalenceTokens) {
      const plan = planHook(template, t);
      kinds.add(plan.kind);
      const expected = sh(portsentryText(template, t));
      assert.ok(expected.includes(t.target), `${template}: sanity`);
      const actual =
        plan.kind === 'shell' ? sh(plan.script) : execFileSync(plan.argv[0]!, plan.argv.slice(1), { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
      assert.equal(actual, expected, `${template} with ${t.target}\nplan: ${describeHook(plan)}`);
    }
  }
  assert.deepEqual([...kinds].sort(), ['argv', 'shell']);
});

test('in plain unquoted text the value is single-quoted (defence in depth), elsewhere bare', () => {
  const plan = planHook(equivalenceTemplates[2]!, tk);
  assert.equal(plan.kind, 'shell');
  if (plan.kind !== 'shell') return;
  assert.equal(
    plan.script,
    `printf '<%s>' $(( 23 + 1 )) "\${UNSET_X:-1.2.3.4}" \${UNSET_X:-1.2.3.4} "$(printf %s '1.2.3.4')" $(printf %s "1.2.3.4") \`printf %s tcp\` "\`printf %s 23\`" \\1.2.3.4 "\\1.2.3.4" $1.2.3.4 # it's 1.2.3.4`,
  );
});

const dir = mkdtempSync(join(tmpdir(), 'sentry-hookcmd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('shQuote holds any text together under /bin/sh (the second layer, should validation ever let something through)', () => {
  const marker = join(dir, 'pwned');
  for (const hostile of [`$(touch ${marker})`, `\`touch ${marker}\``, `'; touch ${marker}; '`, `x'\\''; touch ${marker} #`, `a\nb; touch ${marker}`]) {
    assert.equal(sh(`printf '%s' ${shQuote(hostile)}`), hostile);
    assert.equal(existsSync(marker), false, hostile);
  }
});
