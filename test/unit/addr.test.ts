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
    assert.throws(
      () => parseCidr(bad),
      (e: Error & { code?: string }) => e.code === 'USAGE',
      bad,
    );
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

test('inet_aton shorthands are refused: only four decimal numbers are IPv4', () => {
  // ipaddr.js (like inet_aton) reads each of these as some address; none is what an admin writes
  for (const bad of [
    '10',
    '0',
    '4294967295',
    '0x0a',
    '0x0a.0.0.1',
    '10.1',
    '10.0.1',
    '010.1.1.1',
    '1.2.3.04',
    '0/0',
    '10/8',
    '::ffff:1.2.3.0x4',
    '::ffff:01.2.3.4',
    '::1.2.3',
  ]) {
    assert.throws(
      () => parseCidr(bad),
      (e: Error & { code?: string; hint?: string }) =>
        e.code === 'USAGE' && /is not a valid IP address/.test(e.message) && /four decimal numbers/.test(e.hint ?? ''),
      bad,
    );
  }
});

test('IPv6 zone ids are refused with a message saying so, not stripped', () => {
  for (const bad of ['fe80::1%eth0', 'fe80::1%2', 'fe80::%eth0/64']) {
    assert.throws(
      () => parseCidr(bad),
      (e: Error & { code?: string }) => e.code === 'USAGE' && /has an IPv6 zone id \(%/.test(e.message),
      bad,
    );
  }
});

test('prefix lengths are plain decimal numbers', () => {
  for (const bad of ['10.0.0.0/08', '10.0.0.0/+8', '10.0.0.0/0x8', '2001:db8::/064']) {
    assert.throws(
      () => parseCidr(bad),
      (e: Error & { code?: string }) => e.code === 'USAGE',
      bad,
    );
  }
  assert.equal(parseCidr('::/0').text, '::/0');
});
