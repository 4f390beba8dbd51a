import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BanRecord } from '../../src/adapters/journal.js';
import { BanPacker, packBans, packedRecords, unpackBans } from '../../src/core/ban-pack.js';

const ban = (target: string, extra: Partial<BanRecord> = {}): BanRecord => ({
  op: 'ban',
  time: 1,
  target,
  ttl: 60,
  expires: 1_800_000_000_000,
  origin: 'auto',
  reason: 'r',
  by: 'b',
  ...extra,
});

test('plain IPv4 bans are packed with what the kernel needs; IPv6 and networks travel whole', () => {
  const bans = [
    ban('198.51.100.7', { port: 23, proto: 'tcp', gateway: 'gw-a' }),
    ban('203.0.113.9', { expires: null, origin: 'manual', gateway: 'gw-b' }),
    ban('192.0.2.1', { origin: 'fleet', proto: 'udp', port: 53 }),
    ban('2001:db8::1'),
    ban('10.0.0.0/8', { origin: 'imported' }),
  ];
  const chunk = unpackBans(packBans(bans));
  assert.equal(chunk.v4.count, 3);
  assert.deepEqual(
    [...packedRecords(chunk.v4)].map((b) => [b.target, b.expires, b.origin, b.port, b.proto, b.gateway]),
    [
      ['198.51.100.7', 1_800_000_000_000, 'auto', 23, 'tcp', 'gw-a'],
      ['203.0.113.9', null, 'manual', undefined, undefined, 'gw-b'],
      ['192.0.2.1', 1_800_000_000_000, 'fleet', 53, 'udp', undefined],
    ],
  );
  assert.deepEqual(chunk.others, [bans[3], bans[4]]);
});

test('an empty table packs and unpacks', () => {
  const chunk = unpackBans(packBans([]));
  assert.equal(chunk.v4.count, 0);
  assert.deepEqual(chunk.others, []);
});

test('anything that is not a whole packed chunk is refused', () => {
  const good = packBans([ban('198.51.100.7')]);
  assert.throws(() => unpackBans(Buffer.from('{"op":"ban"}')), /not a packed ban chunk/);
  assert.throws(() => unpackBans(good.subarray(0, good.length - 3)), /checksum/);
  assert.throws(() => unpackBans(Buffer.alloc(0)), /not a packed ban chunk/);
});

test('every chunk carries its checksum: one flipped bit anywhere refuses the chunk whole', () => {
  const good = packBans([ban('198.51.100.7'), ban('198.51.100.8', { expires: 1e12, port: 22, proto: 'tcp' }), ban('2001:db8::1')]);
  assert.equal(unpackBans(good).v4.count, 2);
  for (let at = 4; at < good.length; at++) {
    const bad = Buffer.from(good);
    bad[at]! ^= 0x10;
    assert.throws(() => unpackBans(bad), /checksum|wrong length/, `byte ${at} flipped`);
  }
});

test('a chunk of the older format (no checksum) is refused by name', () => {
  const old = Buffer.from(packBans([ban('198.51.100.7')]));
  old.write('SXB1', 0, 'latin1');
  assert.throws(() => unpackBans(old), /older format \(SXB1\)/);
});

test('a packer fills blocks of plain IPv4 bans and refuses the rest, which stay records', () => {
  const p = new BanPacker(2);
  const kept = [
    ban('198.51.100.7', { port: 23, proto: 'tcp', gateway: 'gw-a' }),
    ban('2001:db8::1'),
    ban('10.0.0.0/8'),
    ban('203.0.113.9', { expires: null, origin: 'manual' }),
  ].filter((b) => !p.add(b));
  assert.deepEqual(
    kept.map((b) => b.target),
    ['2001:db8::1', '10.0.0.0/8'],
  );
  assert.ok(p.full);
  assert.throws(() => p.add(ban('192.0.2.2')), /the block is full/, 'never a ban mistaken for one that does not pack');
  const first = p.take();
  assert.equal(p.count, 0, 'a new block');
  assert.ok(p.add(ban('192.0.2.1', { origin: 'fleet', gateway: 'gw-b' })));
  const second = p.take();
  assert.deepEqual(
    [...packedRecords(first), ...packedRecords(second)].map((b) => [b.target, b.expires, b.origin, b.port, b.proto, b.gateway]),
    [
      ['198.51.100.7', 1_800_000_000_000, 'auto', 23, 'tcp', 'gw-a'],
      ['203.0.113.9', null, 'manual', undefined, undefined, undefined],
      ['192.0.2.1', 1_800_000_000_000, 'fleet', undefined, undefined, 'gw-b'],
    ],
  );
  assert.deepEqual(first.gateways, ['', 'gw-a'], 'each block names its own gateways');
  assert.deepEqual(second.gateways, ['', 'gw-b']);
});
