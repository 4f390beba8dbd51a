/** How the CLI writes: stdout lines, one-line warnings on stderr, a progress bar on a terminal. */
import cliProgress from 'cli-progress';
import { printable } from '../core/text.js';
import type { Progress } from '../daemon/ban-commands.js';

/** Every line goes out through printable(): stored text (reasons, fleet peers' fields) cannot forge lines or drive the terminal. */
export function out(line: string): void {
  process.stdout.write(`${printable(line)}\n`);
}

export function warn(line: string): void {
  process.stderr.write(`sentry-xdp: ${printable(line)}\n`);
}

const STAGE_LABELS: Readonly<Record<string, string>> = { kernel: 'kernel table', nft: 'nftables    ' };

/** A progress bar on a terminal (stderr), nothing otherwise. */
export function progressBar(): { update: Progress; stop: () => void } {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: '{stage} [{bar}] {value}/{total} {percentage}% eta {eta_formatted}', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let stage = '';
  return {
    update: (s, done, total) => {
      if (s !== stage) {
        if (stage) bar.stop();
        stage = s;
        bar.start(total, 0, { stage: STAGE_LABELS[s] ?? 'banning     ' });
      }
      bar.update(done);
    },
    stop: () => stage && bar.stop(),
  };
}
