import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasUnsafeChars, hostName, oneLine, printable } from '../../src/core/text.js';

test('printable escapes C0, DEL, C1, line separators and bidi controls, and nothing else', () => {
  assert.equal(printable('x\n\x1b[31mfake'), 'x\\u000a\\u001b[31mfake');
  assert.equal(printable('a\tb\rc\x00d\x7fe'), 'a\\u0009b\\u000dc\\u0000d\\u007fe');
  assert.equal(printable('\x9b2J\x85'), '\\u009b2J\\u0085'); // CSI and NEL as single C1 characters
  assert.equal(printable('evil\u202eexe.txt\u2066\u2069\u200f\u061c\u2028'), 'evil\\u202eexe.txt\\u2066\\u2069\\u200f\\u061c\\u2028');
  const plain = 'scan from 198.18.0.2 to 2001:db8::1 — ünïcödé 日本 ok';
  assert.equal(printable(plain), plain);
  assert.ok(hasUnsafeChars('a\u202eb') && hasUnsafeChars('\x1b') && !hasUnsafeChars(plain));
});

test('printable keeps JSON valid and the data intact', () => {
  const v = { reason: 'x\n\x1b[31m\x9b\u202e' };
  const line = printable(JSON.stringify(v));
  assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u202e]/); // eslint-disable-line no-control-regex -- no control character may be left
  assert.deepEqual(JSON.parse(line), v);
});

test('oneLine trims, escapes and cuts', () => {
  assert.equal(oneLine('  a\nb  '), 'a\\u000ab');
  assert.equal(oneLine('x'.repeat(50), 10), 'xxxxxxx...');
});

test('host names: RFC 1123 labels only, never an address literal', () => {
  assert.equal(hostName('Scanner-1.Example.NET.'), 'scanner-1.example.net');
  assert.equal(hostName('localhost'), 'localhost');
  assert.equal(hostName('1e100.net'), '1e100.net');
  for (const bad of [
    '1.2.3.4', // an address: "host: 1.2.3.4/198.18.0.2" would name a fake source
    '10',
    '0x7f.0.0.1',
    '1.2.3.0x4',
    '::1',
    'evil.example/1.2.3.4',
    'a b.example',
    'x\n attackalert: fake',
    'a\u202eb.example',
    '-a.example',
    'a-.example',
    'under_score.example',
    'a..b',
    '',
    '.',
    `${'a'.repeat(64)}.example`,
    `${'a.'.repeat(127)}aa`,
  ]) {
    assert.equal(hostName(bad), undefined, JSON.stringify(bad));
  }
});
