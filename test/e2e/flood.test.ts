/**
 * End to end: a spoofed SYN flood (hping3 --flood --rand-source) must neither
 * spend the ban budget nor bury a real scan. The real scanner is banned and
 * logged and learns at most 3 ports; no alert of a banned source is lost; the
 * log stays readable (one summary line a second); the daemon stays small and
 * `status` stays quick.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ATK4, createLab, describeRun, GW4, nmapArgv, parseNmap, requireTools, sleep } from '../helpers/lab.js';

const PORTS = '1,11,15,79,111,119,143,540,635,1080';

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

test(
  'a 15 s --rand-source SYN flood with a real nmap scan in the middle: the scanner is banned, logged and learns at most 3 ports; no ban alert is lost; the log stays short',
  { timeout: 120_000 },
  async (t) => {
    requireTools('hping3', 'nmap');
    const lab = createLab(t);
    const cfg = lab.writeConfig('sentry.yaml', `tcp_ports: "${PORTS}"\nban_ttl: 10m\n`);
    const d = await lab.startDaemon({ config: cfg });
    const mark = d.lines.length;
    const flood = lab.atk(['timeout', '15', 'hping3', '--flood', '--rand-source', '-q', '-S', '-p', '1', GW4], { timeoutMs: 30_000 });
    await sleep(5000);
    const scan = parseNmap(await lab.atk(nmapArgv(['-sS'], PORTS, [GW4]), { timeoutMs: 60_000 }));
    const tStatus = Date.now();
    const st = await lab.status();
    const statusMs = Date.now() - tStatus;
    const pid = st.daemonPid!;
    const rss = rssMb(pid);
    await flood;
    await sleep(1500);

    const learned = scan.listed.filter((p) => p.state === 'open' || p.state === 'closed');
    assert.ok(learned.length <= 3, `the scanner learned ${learned.length} port(s): ${JSON.stringify(scan.listed)}\n${describeRun(scan.run)}`);
    await d.waitForLine(new RegExp(`^attackalert: Host ${ATK4.replace(/\./g, '\\.')} has been blocked via XDP drop`), 5000, mark);
    const lines = d.lines.length - mark;
    const summaries = d.matching(/^attackalert: flood: in the last \d+s \d+ source\(s\) probed one port/, mark).length;
    const c = (await lab.status()).counters;
    t.diagnostic(
      `flood: ${c.passed} passed, deferred ${c.bansDeferred}, summarised ${c.alertsSummarised}, bans ${c.bansAdded}, rb_lost ${c.rbLost}; ${lines} log lines (${summaries} summaries); daemon RSS ${rss.toFixed(0)} MB; status in ${statusMs} ms`,
    );
    assert.ok(Number(c.bansDeferred) > 10_000, `the flood was real and deferred: ${JSON.stringify(c)}`);
    assert.equal(c.rbLost, 0, 'no alert lost');
    assert.ok(Number(c.bansAdded) < 100, `the flood did not spend the ban budget: ${c.bansAdded} bans`);
    assert.ok(summaries >= 5, `a summary line a second\n${d.output().slice(-3000)}`);
    assert.ok(lines <= 500, `${lines} log lines`);
    assert.ok(rss < 200, `daemon RSS ${rss.toFixed(0)} MB`);
    assert.ok(statusMs < 1000, `status took ${statusMs} ms`);
  },
);
