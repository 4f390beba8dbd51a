/**
 * End to end: what the metrics endpoint says about bans the daemon did not make itself. Manual bans
 * come from the CLI, another process: the daemon counts them from the kernel table, and a ban that
 * expired between two samples still counts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLab, describeRun, requireTools, sleep } from '../helpers/lab.js';

test("metrics: bans_added_total counts the CLI's manual bans (an expired one too); build_info names the program", { timeout: 90_000 }, async (t) => {
  requireTools('curl');
  const lab = createLab(t);
  const d = await lab.startDaemon({ config: lab.writeConfig('m.yaml', 'tcp_ports: "1"\nban_ttl: 10m\nmetrics: { port: 9641 }\n') });
  await d.waitForLine(/^sentry-xdp: metrics: http:\/\/127\.0\.0\.1:9641\/metrics$/, 5000);
  const scrape = async () => {
    const r = await lab.gw(['curl', '-s', '--max-time', '3', 'http://127.0.0.1:9641/metrics']);
    assert.equal(r.code, 0, describeRun(r));
    return r.stdout;
  };
  // the first refresh is the baseline of the CLI's bans: wait for it
  let before = await scrape();
  for (let i = 0; i < 50 && !/^sentry_xdp_build_info/m.test(before); i++) {
    await sleep(200);
    before = await scrape();
  }
  assert.match(before, /^sentry_xdp_build_info\{version="[^"]+",abi="\d+",program="sentry(_noct)?(\+frags)?"\} 1$/m);
  assert.match(before, /^sentry_xdp_bans_added_total\{origin="manual"\} 0$/m);
  for (const [target, ttl] of [
    ['198.51.100.7', '10m'],
    ['198.51.100.8', '3s'],
    ['198.51.100.9', '10m'],
  ] as const) {
    const r = await lab.cli(['ban', target, '--ttl', ttl]);
    assert.equal(r.code, 0, describeRun(r));
  }
  await sleep(12_000); // past the 3 s ban, and past the next 10 s sample of the ban table
  const after = await scrape();
  const lines = after
    .split('\n')
    .filter((l) => /^sentry_xdp_(bans_|build_info)/.test(l))
    .join('\n');
  assert.match(after, /^sentry_xdp_bans_in_force\{origin="manual"\} 2$/m, lines);
  assert.match(after, /^sentry_xdp_bans_expired_total 1$/m, lines);
  assert.match(after, /^sentry_xdp_bans_added_total\{origin="manual"\} 3$/m, lines);
  assert.match(after, /^sentry_xdp_bans_added_total\{origin="auto"\} 0$/m, lines);
});
