import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AWARE_TCP_PORTS, AWARE_UDP_PORTS, formatPortList, parsePortList } from '../../src/core/ports.js';

test('port lists and ranges', () => {
  assert.deepEqual(parsePortList('1,7, 9-11,7', 'x'), [1, 7, 9, 10, 11]);
  assert.deepEqual(parsePortList([23, '100-102'], 'x'), [23, 100, 101, 102]);
  assert.equal(formatPortList([1, 2, 3, 7, 9, 10]), '1-3,7,9-10');
});

test('PortSentry aware lists are the defaults', () => {
  assert.equal(parsePortList(AWARE_TCP_PORTS, 't').length, 26);
  assert.equal(parsePortList(AWARE_UDP_PORTS, 'u').length, 21);
});

test('bad ports are refused', () => {
  for (const bad of ['0', '65536', '10-5', 'abc', '1,,x', '1-']) {
    assert.throws(() => parsePortList(bad, 'tcp_ports'), /tcp_ports: /, bad);
  }
});
