/** The daemon's outputs besides stdout (syslog, the digest, source names), on fake sinks. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig } from '../../src/core/config.js';
import { DigestBuilder, type DigestMessage } from '../../src/core/digest.js';
import { fleetBanEvent, type Alert } from '../../src/core/events.js';
import { Kind } from '../../src/core/scan-kind.js';
import type { SyslogSeverity } from '../../src/adapters/syslog.js';
import { makeReporter } from '../../src/daemon/daemon.js';
import { makeOutputs } from '../../src/daemon/outputs.js';

const T = Date.parse('2026-11-22T02:34:22.000Z');
const banned: Alert = {
  time: new Date(T),
  source: '198.18.0.2',
  destination: '198.18.0.1',
  proto: 'tcp',
  port: 23,
  kind: Kind.SYN,
  tcpFlags: 0x02,
  iface: 'eth0',
  probes: 1,
  banned: true,
  banFailed: false,
  possiblySpoofed: false,
  banSeconds: 600,
  expires: new Date(T + 600_000),
};

function setup() {
  const stdout: string[] = [];
  const syslog: string[] = [];
  const sent: DigestMessage[] = [];
  const digest = new DigestBuilder({ intervalMs: 60_000, host: 'gw' });
  const outputs = makeOutputs(
    defaultConfig(),
    makeReporter(false, (l) => stdout.push(l)),
    () => {},
    {
      syslog: { log: (sev: SyslogSeverity, line: string) => void syslog.push(`${sev} ${line}`), close() {} },
      names: { name: (a) => (a === '198.18.0.2' ? 'scanner.example.net' : undefined), close() {} },
      notify: { digest, send: async (m) => void sent.push(m) },
    },
  );
  return { stdout, syslog, sent, outputs };
}

test('an automatic ban reaches stdout and syslog with the source name in the alert line, and the digest as a ban', async () => {
  const { stdout, syslog, sent, outputs } = setup();
  outputs.reporter.alert(banned);
  outputs.reporter.info('started');
  const alertLine = 'attackalert: TCP SYN/Normal scan from host: scanner.example.net/198.18.0.2 to TCP port: 23';
  const banLine = 'attackalert: Host 198.18.0.2 has been blocked via XDP drop (ban 10m, until 2026-11-22T02:44:22.000Z)';
  assert.deepEqual(stdout, [alertLine, banLine, 'sentry-xdp: started']);
  assert.deepEqual(syslog, [`notice ${alertLine}`, `notice ${banLine}`, 'info sentry-xdp: started']);
  await outputs.close(); // forces the digest out
  assert.equal(sent.length, 1);
  const json = sent[0]!.json as { counts: Record<string, number> };
  assert.equal(json.counts.alerts, 1);
  assert.equal(json.counts.new_bans, 1);
  assert.match(sent[0]!.text, /198\.18\.0\.2/);
});

test('a fleet ban is one typed event: its line, its JSON, and a ban in the digest', async () => {
  const { stdout, syslog, sent, outputs } = setup();
  const expires = new Date(Date.now() + 600_000 + 200).toISOString();
  const ban = { target: '198.18.0.9', gateway: 'gw-a', expires: Date.parse(expires) };
  outputs.reporter.emit(fleetBanEvent(ban, new Date()));
  assert.deepEqual(stdout, ['attackalert: Host 198.18.0.9 has been blocked via fleet ban from gateway gw-a (ban 10m)']);
  assert.deepEqual(syslog, [`notice ${stdout[0]}`]);
  const lines: string[] = [];
  makeReporter(
    true,
    (l) => lines.push(l),
    () => new Date(T),
  ).emit(fleetBanEvent(ban, new Date(T)));
  assert.deepEqual(JSON.parse(lines[0]!), { time: '2026-11-22T02:34:22.000Z', event: 'ban', source: '198.18.0.9', origin: 'fleet', gateway: 'gw-a', expires });
  outputs.reporter.unban('198.18.0.9', 'lifted on gateway gw-a');
  await outputs.close();
  const json = sent[0]!.json as { counts: Record<string, number> };
  assert.equal(json.counts.new_bans, 1);
  assert.equal(json.counts.unbans, 1);
});
