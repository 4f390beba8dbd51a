/**
 * KILL_HOSTS_DENY: PortSentry's line in /etc/hosts.deny (tcp_wrappers), e.g.
 * "ALL: $TARGET$ : DENY". The line goes in at the ban and comes out at the unban.
 */
import { existsSync, readFileSync, renameSync, writeFileSync, appendFileSync } from 'node:fs';
import { validateHookTokens, type HookTokens } from '../core/hook-command.js';

export function hostsDenyLine(template: string, t: HookTokens): string {
  validateHookTokens(t);
  return template.replaceAll('$TARGET$', t.target).replaceAll('$PORT$', String(t.port)).replaceAll('$MODE$', t.mode);
}

export class HostsDeny {
  constructor(
    readonly file: string,
    private readonly report: (line: string) => void,
  ) {}

  add(template: string, t: HookTokens): void {
    try {
      const line = hostsDenyLine(template, t);
      const text = existsSync(this.file) ? readFileSync(this.file, 'utf8') : '';
      if (text.split('\n').includes(line)) return;
      appendFileSync(this.file, `${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`);
    } catch (e) {
      this.report(`KILL_HOSTS_DENY: cannot write ${this.file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }

  /** Takes out the lines of these bans, in one rewrite of the file. */
  remove(template: string, bans: readonly HookTokens[]): void {
    if (!bans.length) return;
    try {
      if (!existsSync(this.file)) return;
      const drop = new Set(bans.map((t) => hostsDenyLine(template, t)));
      const lines = readFileSync(this.file, 'utf8').split('\n');
      const kept = lines.filter((l) => !drop.has(l));
      if (kept.length === lines.length) return;
      const tmp = `${this.file}.sentry-xdp.tmp`;
      writeFileSync(tmp, kept.join('\n'));
      renameSync(tmp, this.file);
    } catch (e) {
      this.report(`KILL_HOSTS_DENY: cannot update ${this.file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
}
