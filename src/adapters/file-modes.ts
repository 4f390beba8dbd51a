/**
 * Directories and files with the modes sentry-xdp documents, whatever the
 * umask: mkdir(2) and open(2) apply the umask to the mode they are given, so
 * what we create gets its mode set again with chmod/fchmod.
 */
import { chmodSync, closeSync, fchmodSync, fchownSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/** The state directory (the ban journal, the allow list) and its files: root and the admin group read them. */
export const STATE_DIR_MODE = 0o750;
export const STATE_FILE_MODE = 0o640;
/** The run directory (pid file, port report, daemon stats) and its files: anyone may read them. */
export const RUN_DIR_MODE = 0o755;
export const RUN_FILE_MODE = 0o644;

/** mkdir -p: every directory it creates gets `mode`; one that exists keeps its own (the admin's choice). */
export function makeDir(dir: string, mode: number): void {
  const first = mkdirSync(dir, { recursive: true, mode });
  if (first === undefined) return;
  const top = resolve(first);
  for (let d = resolve(dir); ; d = dirname(d)) {
    chmodSync(d, mode);
    if (d === top || d === dirname(d)) break;
  }
}

export interface WriteOptions {
  mode: number;
  /** Owner to give the new file (a rewrite keeps the old file's owner). */
  uid?: number | undefined;
  gid?: number | undefined;
  /** fsync before the rename: the new content is on disk before it replaces the old. */
  sync?: boolean;
  /** Checked just before the rename: false leaves the file as it is (someone else changed it meanwhile). */
  unchanged?: () => boolean;
}

/**
 * Replaces `path` whole through a temporary file in the same directory and a
 * rename: a reader sees the old file or the new one, never half of one. The
 * temporary file is named after this process, so two writers never share one.
 * False when `unchanged` said no and nothing was replaced.
 */
export function writeFileAtomic(path: string, data: string | Buffer, o: WriteOptions): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', o.mode);
  try {
    fchmodSync(fd, o.mode);
    if (o.uid !== undefined && o.gid !== undefined) fchownSync(fd, o.uid, o.gid);
    writeFileSync(fd, data);
    if (o.sync) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    if (o.unchanged && !o.unchanged()) {
      rmSync(tmp, { force: true });
      return false;
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return true;
}
