/**
 * The one error class of sentry-xdp. `code` is stable (scripts may match it),
 * `message` says what went wrong and where, `hint` says how to fix it. Only the
 * CLI turns it into an exit code and a one-line message.
 */
export type ErrorCode =
  | 'USAGE'
  | 'CONFIG'
  | 'NOT_ROOT'
  | 'NO_INTERFACE'
  | 'ALREADY_ATTACHED'
  | 'NOT_ATTACHED'
  | 'NOT_BANNED'
  | 'DAEMON_RUNNING'
  | 'KERNEL'
  | 'BUILD'
  | 'IO'
  | 'INTERRUPTED';

export class SentryError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  constructor(code: ErrorCode, message: string, hint?: string) {
    super(message);
    this.name = 'SentryError';
    this.code = code;
    this.hint = hint;
  }
}

/** Exit codes: 2 for what the user typed or wrote, 130 when stopped by Ctrl-C or a stop, 1 for everything else. */
export function exitCodeFor(code: ErrorCode): number {
  return code === 'USAGE' || code === 'CONFIG' ? 2 : code === 'INTERRUPTED' ? 130 : 1;
}
