import assert from 'node:assert/strict';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { HostsDeny, hostsDenyLine, hostsDenyTarget } from '../../src/daemon/hosts-deny.js';
import { scratch } from '../helpers/scratch.js';

const { dir } = scratch('sentry-hosts-deny-');
const T = 'ALL: $TARGET$ : DENY';
const v4 = { target: '192.0.2.7', port: 23, mode: 'tcp' };
const v6 = { target: '2001:db8::2', port: 23, mode: 'tcp' };
const mode = (p: string) => statSync(p).mode & 0o7777;

test('tcp_wrappers syntax: IPv6 in brackets (a network as [net]/len), IPv4 as it is', () => {
  assert.equal(hostsDenyTarget('192.0.2.7'), '192.0.2.7');
  assert.equal(hostsDenyTarget('2001:db8::2'), '[2001:db8::2]');
  assert.equal(hostsDenyTarget('2001:db8::/64'), '[2001:db8::]/64');
  assert.equal(hostsDenyLine(T, v4), 'ALL: 192.0.2.7 : DENY');
  assert.equal(hostsDenyLine(T, v6), 'ALL: [2001:db8::2] : DENY');
  assert.equal(hostsDenyLine('ALL: [$TARGET$]', v6), 'ALL: [2001:db8::2]', 'a template that brackets the token is not bracketed twice');
  assert.throws(() => hostsDenyLine(T, { ...v6, target: '2001:db8::2]\nALL: ALL' }), /not an IP address/);
});

test("add then remove: the IPv6 line is bracketed both ways; the admin's lines stay", () => {
  const file = join(dir, 'a.deny');
  writeFileSync(file, 'sshd: 192.0.2.1\n');
  const problems: string[] = [];
  const h = new HostsDeny(file, (l) => problems.push(l));
  h.add(T, v6);
  h.add(T, v6); // once
  h.add(T, v4);
  assert.equal(readFileSync(file, 'utf8'), 'sshd: 192.0.2.1\nALL: [2001:db8::2] : DENY\nALL: 192.0.2.7 : DENY\n');
  h.remove(T, [v6]);
  assert.equal(readFileSync(file, 'utf8'), 'sshd: 192.0.2.1\nALL: 192.0.2.7 : DENY\n');
  assert.deepEqual(problems, []);
});

test('an unbracketed IPv6 line an older version wrote comes out too', () => {
  const file = join(dir, 'legacy.deny');
  writeFileSync(file, 'ALL: 2001:db8::2 : DENY\nsshd: ALL\n');
  new HostsDeny(file, () => {}).remove(T, [v6]);
  assert.equal(readFileSync(file, 'utf8'), 'sshd: ALL\n');
});

test("remove keeps the file's mode (and owner), whatever the umask", () => {
  for (const m of [0o644, 0o600, 0o640]) {
    const file = join(dir, `mode-${m}.deny`);
    writeFileSync(file, 'ALL: 192.0.2.7 : DENY\nsshd: ALL\n');
    chmodSync(file, m);
    const before = statSync(file);
    const old = process.umask(0o077);
    try {
      new HostsDeny(file, () => {}).remove(T, [v4]);
    } finally {
      process.umask(old);
    }
    const after = statSync(file);
    assert.equal(readFileSync(file, 'utf8'), 'sshd: ALL\n');
    assert.equal(mode(file), m, `mode ${m.toString(8)}`);
    assert.deepEqual([after.uid, after.gid], [before.uid, before.gid]);
  }
});

test('a hosts.deny that sentry-xdp creates is 0644, whatever the umask', () => {
  const file = join(dir, 'new.deny');
  const old = process.umask(0o077);
  try {
    new HostsDeny(file, () => {}).add(T, v4);
  } finally {
    process.umask(old);
  }
  assert.equal(mode(file), 0o644);
});

test('an unwritable file is reported in one line, not thrown', () => {
  const problems: string[] = [];
  new HostsDeny(join(dir, 'no', 'such', 'dir', 'hosts.deny'), (l) => problems.push(l)).add(T, v4);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^KILL_HOSTS_DENY: cannot write .*ENOENT/);
});
