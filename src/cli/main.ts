#!/usr/bin/env node
/**
 * sentry-xdp's command line: parses argv (src/cli/program.ts, from the verbs in src/cli/verbs/), calls
 * src/daemon/, formats what comes back. Errors become one line on stderr and a non-zero exit.
 */
import { CommanderError } from 'commander';
import { printable } from '../core/text.js';
import { exitCodeFor, SentryError } from '../errors.js';
import { buildProgram } from './program.js';

export async function main(argv: string[]): Promise<number> {
  // the state files (journal, alerts, allow list) are 0640 and their directory 0750 whatever umask we were started
  // with (systemd's UMask=0077, a shell's 000); the run dir and hosts.deny set their own modes (src/adapters/file-modes.ts)
  process.umask(0o027);
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0; // a verb may set it (status: 1 degraded, 3 not running)
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed its one line; --help and --version exit 0
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof SentryError) {
      process.stderr.write(`sentry-xdp: ${printable(`${e.message}${e.hint ? `; ${e.hint}` : ''}`)}\n`);
      return exitCodeFor(e.code);
    }
    const err = e as Error;
    process.stderr.write(`sentry-xdp: unexpected error: ${printable(String(err.message))}; please report it with SENTRY_XDP_DEBUG=1 output\n`);
    if (process.env.SENTRY_XDP_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

// exit once stdout has drained: a large `list --json` into a pipe must not be cut short
main(process.argv).then((code) => process.stdout.write('', () => process.exit(code)));
