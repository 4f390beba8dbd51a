import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AWARE_TCP_PORTS,
  AWARE_UDP_PORTS,
  ephemeralWarnings,
  formatPortList,
  LINUX_EPHEMERAL_RANGE,
  parsePortList,
  parsePortRange,
} from '../../src/core/ports.js';

test('port lists and ranges', () => {
  assert.deepEqual(parsePortList('1,7, 9-11,7', 'x'), [1, 7, 9, 10, 11]);
  assert.deepEqual(parsePortList([23, '100-102'], 'x'), [23, 100, 101, 102]);
  assert.equal(formatPortList([1, 2, 3, 7, 9, 10]), '1-3,7,9-10');
});

test('PortSentry aware lists, less the ports in the ephemeral range, are the defaults', () => {
  assert.equal(parsePortList(AWARE_TCP_PORTS, 't').length, 19);
  assert.equal(parsePortList(AWARE_UDP_PORTS, 'u').length, 13);
  assert.deepEqual(ephemeralWarnings({ tcp: parsePortList(AWARE_TCP_PORTS, 't'), udp: parsePortList(AWARE_UDP_PORTS, 'u') }, LINUX_EPHEMERAL_RANGE), []);
});

test('watched ports in the ephemeral range are named, per protocol', () => {
  const w = ephemeralWarnings({ tcp: [1, 32771, 32772, 40421], udp: [161] }, [32768, 60999]);
  assert.equal(w.length, 1);
  assert.match(w[0]!, /^watched TCP port\(s\) 32771-32772,40421 lie inside the ephemeral range 32768-60999/);
  assert.deepEqual(parsePortRange('32768\t60999\n'), [32768, 60999]);
  assert.equal(parsePortRange('garbage'), undefined);
});

test('bad ports are refused', () => {
  for (const bad of ['0', '65536', '10-5', 'abc', '1,,x', '1-']) {
    assert.throws(() => parsePortList(bad, 'tcp_ports'), /tcp_ports: /, bad);
  }
});
