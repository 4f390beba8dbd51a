import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig, parseConfig } from '../../src/core/config.js';
import { listeningPorts } from '../../src/core/proc-net.js';
import { computeWatchSet } from '../../src/core/watch.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:006F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
`;
const UDP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  12: 00000000000000000000000000000000:00A1 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0 0
  13: 00000000000000000000000001000000:8023 00000000000000000000000001000000:0035 01 00000000:00000000 00:00000000 00000000     0        0 4 2 0 0
`;

test('/proc/net parsing finds TCP listeners and unconnected UDP sockets only', () => {
  assert.deepEqual([...listeningPorts(TCP, 'tcp')], [111]);
  assert.deepEqual([...listeningPorts(UDP6, 'udp')], [161]);
});

test('a listed port that a local service listens on is not a tripwire, and status says why', () => {
  const w = computeWatchSet(defaultConfig(), { tcp: new Set([111, 22]), udp: new Set([161]) });
  assert.ok(!w.tcp.includes(111));
  assert.ok(!w.udp.includes(161));
  assert.ok(w.tcp.includes(1));
  assert.deepEqual(
    w.skipped.map((s) => `${s.proto}/${s.port}`),
    ['tcp/111', 'udp/161'],
  );
  assert.match(w.skipped[0]!.reason, /local service listens on TCP 111/);
});

test('advanced mode watches every port below N that nothing listens on, minus excludes', () => {
  const cfg = parseConfig('tcp_ports: "1"\nadvanced: { tcp: 1024, exclude_tcp: "80,113" }\n', 'c.yaml');
  const w = computeWatchSet(cfg, { tcp: new Set([22]), udp: new Set() });
  assert.equal(w.tcp.length, 1023 - 3);
  assert.ok(!w.tcp.includes(22) && !w.tcp.includes(80) && !w.tcp.includes(113) && !w.tcp.includes(1024));
  assert.deepEqual(w.skipped, []);
});
