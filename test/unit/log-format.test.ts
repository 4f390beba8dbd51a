import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kind } from '../../src/core/scan-kind.js';
import { alertLine, type Alert } from '../../src/core/log-format.js';
import { firstHostName } from '../../src/adapters/resolver.js';

const alert = (hostname?: string): Alert => ({
  time: new Date(0),
  source: '198.18.0.2',
  destination: '198.18.0.1',
  ...(hostname !== undefined ? { hostname } : {}),
  proto: 'tcp',
  port: 23,
  kind: Kind.SYN,
  tcpFlags: 0x02,
  iface: 'eth0',
  probes: 1,
  banned: false,
  banFailed: false,
  possiblySpoofed: false,
  banSeconds: 0,
});

test('alert lines name the source by its resolved name, and always give the packet address', () => {
  assert.match(alertLine(alert()), /from host: 198\.18\.0\.2\/198\.18\.0\.2 to TCP port: 23$/);
  assert.match(alertLine(alert('scanner.example.net.')), /from host: scanner\.example\.net\/198\.18\.0\.2 to TCP port: 23$/);
});

test('a reverse-DNS name that is not a host name never reaches an alert line', () => {
  for (const evil of ['10.9.9.9', '10.9.9.9/10.9.9.9', 'x\nattackalert: fake', 'a b', 'e\u202evil.example', '']) {
    const line = alertLine(alert(evil));
    assert.match(line, /from host: 198\.18\.0\.2\/198\.18\.0\.2 to TCP port: 23$/, JSON.stringify(evil));
    assert.ok(!line.includes('10.9.9.9') && !line.includes('\n'), line);
  }
});

test('the resolver takes the first PTR name that is a host name', () => {
  assert.equal(firstHostName(['1.2.3.4', 'bad name', 'ok.example.']), 'ok.example');
  assert.equal(firstHostName(['1.2.3.4']), undefined);
  assert.equal(firstHostName([]), undefined);
});
