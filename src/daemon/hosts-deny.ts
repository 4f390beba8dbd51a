/**
 * KILL_HOSTS_DENY: PortSentry's line in /etc/hosts.deny (tcp_wrappers), e.g.
 * "ALL: $TARGET$ : DENY". The line goes in at the ban and comes out at the unban.
 */
import { appendFileSync, chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import { validateHookTokens, type HookTokens } from '../core/hook-command.js';
import { writeFileAtomic } from '../adapters/file-modes.js';

/** A hosts.deny made by us: tcp_wrappers is read by services that do not run as root. */
const NEW_FILE_MODE = 0o644;

/**
 * $TARGET$ as tcp_wrappers reads it: an IPv6 address in brackets
 * (`[2001:db8::1]`, a network `[2001:db8::]/64`); IPv4 as it is. A template
 * that brackets the token itself (`[$TARGET$]`) is not bracketed twice.
 */
export function hostsDenyTarget(target: string): string {
  if (!target.includes(':')) return target;
  const slash = target.indexOf('/');
  return slash < 0 ? `[${target}]` : `[${target.slice(0, slash)}]${target.slice(slash)}`;
}

export function hostsDenyLine(template: string, t: HookTokens): string {
  validateHookTokens(t);
  return template
    .replaceAll('[$TARGET$]', '$TARGET$')
    .replaceAll('$TARGET$', hostsDenyTarget(t.target))
    .replaceAll('$PORT$', String(t.port))
    .replaceAll('$MODE$', t.mode);
}

/** The line older versions wrote for an IPv6 target (unbracketed), so that an unban after an upgrade still takes it out. */
function legacyLine(template: string, t: HookTokens): string {
  return template.replaceAll('$TARGET$', t.target).replaceAll('$PORT$', String(t.port)).replaceAll('$MODE$', t.mode);
}

/** What identifies one version of the file: a writer that replaced or appended to it changes one of these. */
const version = (file: string): string => {
  const s = statSync(file, { bigint: true });
  return `${s.ino}:${s.size}:${s.mtimeNs}`;
};

export class HostsDeny {
  constructor(
    readonly file: string,
    private readonly report: (line: string) => void,
  ) {}

  add(template: string, t: HookTokens): void {
    try {
      const line = hostsDenyLine(template, t);
      const existed = existsSync(this.file);
      const text = existed ? readFileSync(this.file, 'utf8') : '';
      if (text.split('\n').includes(line)) return;
      // O_APPEND: one write, so a line another writer appends meanwhile is not lost
      appendFileSync(this.file, `${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`, { mode: NEW_FILE_MODE });
      if (!existed) chmodSync(this.file, NEW_FILE_MODE); // whatever the umask
    } catch (e) {
      this.report(`KILL_HOSTS_DENY: cannot write ${this.file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }

  /**
   * Takes out the lines of these bans, in one rewrite of the file that keeps its
   * mode and owner. The rewrite replaces it atomically (temporary file, fsync,
   * rename), and is done again when another writer changed the file between
   * our read and the rename (a narrow window is left: tcp_wrappers has no lock).
   */
  remove(template: string, bans: readonly HookTokens[]): void {
    if (!bans.length) return;
    try {
      const drop = new Set(bans.flatMap((t) => [hostsDenyLine(template, t), legacyLine(template, t)]));
      for (let attempt = 0; attempt < 5; attempt++) {
        if (!existsSync(this.file)) return;
        const before = version(this.file);
        const st = statSync(this.file);
        const lines = readFileSync(this.file, 'utf8').split('\n');
        const kept = lines.filter((l) => !drop.has(l));
        if (kept.length === lines.length) return;
        const opts = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, sync: true, unchanged: () => version(this.file) === before };
        if (writeFileAtomic(this.file, kept.join('\n'), opts)) return;
      }
      this.report(`KILL_HOSTS_DENY: ${this.file} kept changing while sentry-xdp updated it; its lines stay until the next unban`);
    } catch (e) {
      this.report(`KILL_HOSTS_DENY: cannot update ${this.file}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
}
