import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addr16ToString, parseCidr } from '../../src/core/addr.js';

test('addresses and networks parse to canonical form', () => {
  assert.equal(parseCidr('1.2.3.4').text, '1.2.3.4');
  assert.equal(parseCidr('203.0.113.9/24').text, '203.0.113.0/24');
  assert.equal(parseCidr('2001:DB8::1').text, '2001:db8::1');
  assert.equal(parseCidr('2001:db8:1:2::/48').text, '2001:db8:1::/48');
  assert.equal(parseCidr('::ffff:1.2.3.4').text, '1.2.3.4');
  assert.equal(parseCidr('1.2.3.4/32').prefix, 32);
  assert.equal(parseCidr('0.0.0.0/0').text, '0.0.0.0/0');
});

test('bad addresses are refused', () => {
  for (const bad of ['1.2.3.4/33', '300.1.1.1', '1.2.3', '1.2.3.4/', '1.2.3.4/24/1', '2001:db8::/129', 'example.com', '1.2.3.4; rm -rf /', '', '010.1.1.1']) {
    assert.throws(() => parseCidr(bad), (e: Error & { code?: string }) => e.code === 'USAGE', bad);
  }
});

test('kernel 16-byte form prints IPv4 as dotted quad', () => {
  const b = Buffer.alloc(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set([198, 18, 0, 2], 12);
  assert.equal(addr16ToString(b), '198.18.0.2');
  assert.equal(addr16ToString(parseCidr('2001:db8::2').bytes), '2001:db8::2');
});
