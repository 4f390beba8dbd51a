import assert from 'node:assert/strict';
import { test } from 'node:test';
import { alertJson, alertLine, banLine, banReason, spoofedLine, unbanLine, type Alert } from '../../src/core/log-format.js';
import { Kind, kindKey, scanName, tcpFlagNames } from '../../src/core/scan-kind.js';

test('scan names keep PortSentry wording', () => {
  assert.equal(scanName(Kind.SYN, 2), 'TCP SYN/Normal scan');
  assert.equal(scanName(Kind.FIN, 1), 'TCP FIN scan');
  assert.equal(scanName(Kind.NULL, 0), 'TCP NULL scan');
  assert.equal(scanName(Kind.XMAS, 0x29), 'TCP XMAS scan');
  assert.equal(scanName(Kind.UDP, 0), 'UDP scan');
  assert.equal(scanName(Kind.UNKNOWN, 0x03), 'TCP Unknown Type scan (flags: FIN SYN)');
  assert.equal(tcpFlagNames(0), 'none');
});

test('alert and ban lines match what logcheck/fail2ban filters for PortSentry expect', () => {
  const a: Alert = {
    time: new Date(0),
    source: '198.18.0.1',
    destination: '198.19.0.20',
    proto: 'tcp',
    port: 23,
    kind: Kind.SYN,
    tcpFlags: 2,
    iface: 'eth0',
    probes: 1,
    banned: true,
    banFailed: false,
    possiblySpoofed: false,
    banSeconds: 3600,
    expires: new Date(3600_000),
  };
  assert.equal(alertLine(a), 'attackalert: TCP SYN/Normal scan from host: 198.18.0.1/198.18.0.1 to TCP port: 23');
  assert.match(banLine(a)!, /^attackalert: Host 198\.18\.0\.1 has been blocked via XDP drop \(ban 1h, until 1970-01-01T01:00:00\.000Z\)$/);
  assert.equal(banLine({ ...a, banned: false }), undefined);
  assert.equal(unbanLine('198.18.0.1', 'ban expired'), 'attackalert: Host 198.18.0.1 has been unblocked (ban expired)');
});

test('every alert names the destination it probed (JSON, ban reason), and the PortSentry line stays as it was', () => {
  const a: Alert = {
    time: new Date(0),
    source: '198.18.0.53',
    destination: '198.18.0.1',
    proto: 'tcp',
    port: 1,
    kind: Kind.SYN,
    tcpFlags: 2,
    iface: 'eth0',
    probes: 1,
    banned: false,
    banFailed: false,
    possiblySpoofed: true,
    banSeconds: 0,
  };
  const j = alertJson(a) as Record<string, unknown>;
  assert.equal(j.destination, '198.18.0.1');
  assert.equal(j.possiblySpoofed, true);
  assert.equal(banReason(a), 'TCP SYN/Normal scan to 198.18.0.1 TCP port 1');
  assert.equal(alertLine(a), 'attackalert: TCP SYN/Normal scan from host: 198.18.0.53/198.18.0.53 to TCP port: 1');
  assert.equal(spoofedLine(a), 'Host 198.18.0.53 has a live connection to or through this host; not blocked (possibly spoofed)');
});

test('the kinds PortSentry never had keep its sentence shape; sweeps say how many hosts, pings have no port', () => {
  const base: Alert = {
    time: new Date(0),
    source: '198.18.0.2',
    destination: '198.19.0.17',
    proto: 'tcp',
    port: 445,
    kind: Kind.SWEEP,
    tcpFlags: 2,
    iface: 'eth0',
    probes: 8,
    banned: true,
    banFailed: false,
    possiblySpoofed: false,
    banSeconds: 600,
  };
  assert.equal(alertLine(base), 'attackalert: TCP sweep from host: 198.18.0.2/198.18.0.2 to TCP port: 445 (8 hosts)');
  assert.equal(banReason(base), 'TCP sweep of 8 hosts (the last 198.19.0.17 TCP port 445)');
  assert.equal(alertLine({ ...base, proto: 'icmp', port: 0, probes: 16 }), 'attackalert: ICMP echo sweep from host: 198.18.0.2/198.18.0.2 (16 hosts)');
  assert.equal(alertLine({ ...base, kind: Kind.FRAG, port: 79 }), 'attackalert: TCP fragment evasion scan from host: 198.18.0.2/198.18.0.2 to TCP port: 79');
  assert.equal(alertLine({ ...base, kind: Kind.ACK, port: 79 }), 'attackalert: TCP ACK scan from host: 198.18.0.2/198.18.0.2 to TCP port: 79');
  assert.equal(alertLine({ ...base, kind: Kind.MAIMON, port: 79 }), 'attackalert: TCP Maimon scan from host: 198.18.0.2/198.18.0.2 to TCP port: 79');
  assert.equal(
    alertLine({ ...base, kind: Kind.V6CHAIN, proto: 'ip', port: 0, source: '2001:db8::2' }),
    'attackalert: IPv6 extension-header evasion scan from host: 2001:db8::2/2001:db8::2',
  );
  assert.deepEqual(['frag', 'ack', 'maimon', 'sweep', 'v6chain'], [Kind.FRAG, Kind.ACK, Kind.MAIMON, Kind.SWEEP, Kind.V6CHAIN].map(kindKey));
});
