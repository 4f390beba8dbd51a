/** The allow entries added with `sentry-xdp allow add`, kept under the state directory. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeDir, STATE_DIR_MODE, STATE_FILE_MODE, writeFileAtomic } from './file-modes.js';

export class AllowFile {
  readonly file: string;
  constructor(readonly dir: string) {
    this.file = join(dir, 'allow.txt');
  }

  read(): string[] {
    if (!existsSync(this.file)) return [];
    return readFileSync(this.file, 'utf8')
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
  }

  write(entries: readonly string[]): void {
    makeDir(this.dir, STATE_DIR_MODE);
    writeFileAtomic(this.file, `# sentry-xdp allow list (sentry-xdp allow add|rm)\n${entries.join('\n')}\n`, { mode: STATE_FILE_MODE });
  }
}
