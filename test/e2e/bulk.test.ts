/**
 * End to end: bulk bans. `ban --file -` from a pipe, big lists, many CIDRs, a
 * list that never ends a line, and Ctrl-C half-way: the kernel table, nftables
 * and history agree on what was banned.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { BIN, createLab, describeRun, PATH, type Lab } from '../helpers/lab.js';

function addresses(n: number, first = 0): string {
  const out: string[] = [];
  for (let i = first; i < first + n; i++) out.push(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  return `${out.join('\n')}\n`;
}

async function listCount(lab: Lab, cfg: string): Promise<number> {
  const r = await lab.cli(['list', '--json', '--config', cfg], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, describeRun(r));
  return (JSON.parse(r.stdout) as { bans: unknown[] }).bans.length;
}

async function nftCount(lab: Lab): Promise<number> {
  const r = await lab.gw(['nft', '-j', 'list', 'table', 'inet', 'sentry_xdp'], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, describeRun(r));
  let n = 0;
  for (const o of (JSON.parse(r.stdout) as { nftables: Array<{ set?: { elem?: unknown[] } }> }).nftables) n += o.set?.elem?.length ?? 0;
  return n;
}

test('ban --file - from a pipe: 200 000 addresses, three times in a row; every one listed and in nftables', { timeout: 300_000 }, async (t) => {
  const lab = createLab(t);
  const cfg = lab.writeConfig('sentry.yaml', 'ban_ttl: 1h\n');
  const file = lab.writeConfig('many.txt', addresses(200_000));
  for (let i = 0; i < 3; i++) {
    const r = await lab.gw(['sh', '-c', `cat ${file} | ${BIN} ban --file - --config ${cfg}`], { timeoutMs: 240_000 });
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stdout, /^banned 200000 addresses \(1h\)$/m);
  }
  assert.equal(await listCount(lab, cfg), 200_000);
  assert.equal(await nftCount(lab), 200_000);
});

test('10 000 CIDR bans go in at once (no per-entry walk of the tries); a list without line ends is refused in one line', { timeout: 180_000 }, async (t) => {
  const lab = createLab(t);
  const cfg = lab.writeConfig('sentry.yaml', 'ban_ttl: 1h\n');
  const nets: string[] = [];
  for (let i = 0; i < 10_000; i++) nets.push(`10.${i >> 8}.${i & 255}.0/24`);
  const file = lab.writeConfig('nets.txt', `${nets.join('\n')}\n`);
  const t0 = Date.now();
  const r = await lab.cli(['ban', '--file', file, '--config', cfg], { timeoutMs: 120_000 });
  const ms = Date.now() - t0;
  assert.equal(r.code, 0, describeRun(r));
  t.diagnostic(`10 000 CIDR bans in ${ms} ms`);
  assert.ok(ms < 60_000, `10 000 CIDRs took ${ms} ms (quadratic again?)`);
  assert.equal(await listCount(lab, cfg), 10_000);

  const z = await lab.gw(['sh', '-c', `head -c 50000000 /dev/zero | ${BIN} ban --file - --config ${cfg}`], { timeoutMs: 60_000 });
  assert.equal(z.code, 2, describeRun(z));
  assert.equal(z.stderr.trim().split('\n').length, 1, describeRun(z));
  assert.match(z.stderr, /stdin: a line longer than 4096 characters; nothing was banned/);
});

test(
  'Ctrl-C half-way through a big ban --file: it stops after the step it is in, says how many went in, and the kernel, nftables and history agree',
  { timeout: 300_000 },
  async (t) => {
    const lab = createLab(t);
    const cfg = lab.writeConfig('sentry.yaml', 'ban_ttl: 1h\n');
    const file = lab.writeConfig('many.txt', addresses(400_000));
    const child = spawn('nsenter', [`--net=/run/netns/${lab.gwNs}`, '--', BIN, 'ban', '--file', file, '--config', cfg], {
      env: { ...process.env, PATH, ...lab.env, SENTRY_XDP_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    // interrupt once the first steps are in (the kernel table is filling)
    for (let i = 0; i < 300 && (await lab.status()).bansInForce === 0; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.equal(code, 130, stderr);
    const m = /interrupted \(SIGINT\): banned (\d+) of 400000; history, the kernel table and nftables agree on those/.exec(stderr);
    assert.ok(m, stderr);
    const done = Number(m[1]);
    assert.ok(done > 0 && done < 400_000, stderr);
    assert.equal(await listCount(lab, cfg), done, 'the kernel table');
    assert.equal(await nftCount(lab), done, 'nftables');
    const h = await lab.cli(['history', '--json', '--config', cfg, '--limit', '1000000'], { timeoutMs: 120_000 });
    assert.equal(h.code, 0, describeRun(h));
    assert.equal(h.stdout.split('\n').filter((l) => l.includes('"event":"ban"')).length, done, 'history');
  },
);
