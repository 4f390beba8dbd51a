/** The allow entries added with `sentry-xdp allow add`, kept under the state directory. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
    mkdirSync(this.dir, { recursive: true, mode: 0o750 });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, `# sentry-xdp allow list (sentry-xdp allow add|rm)\n${entries.join('\n')}\n`);
    renameSync(tmp, this.file);
  }
}
