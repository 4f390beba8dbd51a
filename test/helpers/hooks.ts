/** PortSentry's ban hooks, set up so that a test can see what ran. */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { sleep, type GatewaySide } from './lab.js';

/** A config whose automatic bans write hosts.deny lines and whose ends run a script that logs its target. */
export function hookedConfig(lab: GatewaySide, extra = ''): { cfg: string; deny: string; unbans: () => string[] } {
  const deny = `${lab.confDir}/hosts.deny`;
  const out = `${lab.confDir}/unban.out`;
  const script = `${lab.confDir}/unban.sh`;
  writeFileSync(script, `#!/bin/sh\necho "$1" >> ${out}\n`);
  chmodSync(script, 0o755);
  writeFileSync(deny, 'sshd: 192.0.2.1\n'); // the admin's own line stays
  const cfg = lab.writeConfig(
    'sentry.yaml',
    `tcp_ports: "1,11,15,79,111"\nban_ttl: 1h\n${extra}hooks:\n  kill_hosts_deny: "ALL: $TARGET$"\n  hosts_deny_file: ${deny}\n  unban_cmd: "${script} $TARGET$"\n`,
  );
  const unbans = () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : []);
  return { cfg, deny, unbans };
}

/** Waits until `ok()` holds, or fails naming `what`. */
export async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await sleep(100)) if (ok()) return;
  assert.fail(`not within ${ms} ms: ${what}`);
}
