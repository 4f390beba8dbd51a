/**
 * A scratch directory for one test file, and a list for the pids of children
 * a test could not wait for: both cleaned up after the file's tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';

export function scratch(prefix: string): { dir: string; leftovers: number[] } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const leftovers: number[] = [];
  after(() => {
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, leftovers };
}

/** Runs fn with this umask (a child spawned synchronously inside inherits it), then puts the old one back. */
export function withUmask<T>(umask: number, fn: () => T): T {
  const old = process.umask(umask);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}
