/**
 * Delivers digest messages (src/core/digest.ts) to a command and/or a webhook.
 *
 * - `send` never throws and never blocks the event loop; the daemon does not await it on the hot path.
 *   Every failure becomes exactly one line through `report`.
 * - The command runs without a shell: the string is split into argv (quotes and backslashes as in hook
 *   templates), `$SUBJECT$` inside an argument is replaced by the subject (one argument, whatever it contains), the
 *   text goes to its stdin, and the environment carries SENTRY_SUBJECT and SENTRY_URGENT (1 or 0).
 *   So `mail -s $SUBJECT$ root` works as written.
 * - The command gets its own process group; after `timeoutMs` the whole group is killed (SIGKILL).
 * - The webhook gets `POST` with JSON `{subject, text, data, urgent}`; a non-2xx answer is a failure.
 * - At most `maxInFlight` deliveries run at once; beyond that a message is dropped and reported, so a hung
 *   mailer cannot pile up processes.
 */
import { oneLine, runInGroup } from './process-group.js';
import { CommandSyntaxError, commandWords, lexCommand, type Lexed } from '../core/command-lexer.js';
import type { DigestMessage } from '../core/digest.js';
import { SentryError } from '../errors.js';

export interface NotifierOptions {
  /** e.g. `/usr/bin/mail -s $SUBJECT$ root`. Run directly, no shell; the message text is its stdin. */
  command?: string;
  /** e.g. `https://hooks.example.net/sentry`. Receives POST JSON {subject, text, data, urgent}. */
  webhook?: string;
  /** Per delivery. Default 10000. */
  timeoutMs?: number;
  /** Deliveries running at once; more are dropped and reported. Default 4. */
  maxInFlight?: number;
  /** Environment of the command. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Failures, one line each. */
  report: (line: string) => void;
}

const STDERR_TAIL = 2048;

export class Notifier {
  private readonly command: Lexed | undefined;
  private readonly webhook: URL | undefined;
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private readonly env: NodeJS.ProcessEnv | undefined;
  private readonly reportFn: (line: string) => void;
  private inFlight = 0;

  /** Throws SentryError('CONFIG') for a command that does not split or a webhook that is not an http(s) URL. */
  constructor(opts: NotifierOptions) {
    this.reportFn = opts.report;
    this.timeoutMs = opts.timeoutMs !== undefined && Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0 ? opts.timeoutMs : 10_000;
    this.maxInFlight = opts.maxInFlight !== undefined && Number.isInteger(opts.maxInFlight) && opts.maxInFlight > 0 ? opts.maxInFlight : 4;
    this.env = opts.env;
    if (opts.command !== undefined && opts.command.trim() !== '') {
      this.command = lexNotifyCommand(opts.command);
      if (commandWords(this.command, { SUBJECT: '' }).length === 0) {
        throw new SentryError('CONFIG', 'notify.command is empty', 'give a program and its arguments, e.g. /usr/bin/mail -s $SUBJECT$ root');
      }
    }
    if (opts.webhook !== undefined && opts.webhook.trim() !== '') {
      let url: URL;
      try {
        url = new URL(opts.webhook.trim());
      } catch {
        throw new SentryError('CONFIG', `notify.webhook "${opts.webhook}" is not a URL`, 'write e.g. https://hooks.example.net/sentry');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new SentryError('CONFIG', `notify.webhook must be http or https, not ${url.protocol}`, 'write e.g. https://hooks.example.net/sentry');
      }
      this.webhook = url;
    }
  }

  /** True when a command or a webhook is configured. */
  get enabled(): boolean {
    return this.command !== undefined || this.webhook !== undefined;
  }

  /** Delivers to every configured target. Resolves true when all succeeded; never rejects. */
  async send(m: DigestMessage): Promise<boolean> {
    if (!this.enabled) return true;
    if (this.inFlight >= this.maxInFlight) {
      this.report(`notify: dropped "${oneLine(m.subject, 120)}": ${this.inFlight} deliveries still running`);
      return false;
    }
    this.inFlight++;
    try {
      const jobs: Promise<boolean>[] = [];
      if (this.command) jobs.push(this.runCommand(this.command, m));
      if (this.webhook) jobs.push(this.post(this.webhook, m));
      const results = await Promise.all(jobs);
      return results.every(Boolean);
    } catch (e) {
      this.report(`notify: ${oneLine(e instanceof Error ? e.message : String(e))}`);
      return false;
    } finally {
      this.inFlight--;
    }
  }

  private report(line: string): void {
    try {
      this.reportFn(line);
    } catch {
      /* a reporting callback must not break delivery */
    }
  }

  private async runCommand(command: Lexed, m: DigestMessage): Promise<boolean> {
    const subject = oneLine(m.subject, 998);
    const argv = commandWords(command, { SUBJECT: subject });
    const file = argv[0]!;
    const env = { ...(this.env ?? process.env), SENTRY_SUBJECT: subject, SENTRY_URGENT: m.urgent ? '1' : '0' };
    const what = `notify command ${file}`;

    const r = await runInGroup(file, argv.slice(1), { env, timeoutMs: this.timeoutMs, stdin: m.text, tailBytes: STDERR_TAIL });
    const err = r.stderr.trim() ? `: ${oneLine(r.stderr, 300)}` : '';
    if (r.timedOut) this.report(`${what}: timed out after ${this.timeoutMs} ms; process group killed${err}`);
    else if (r.spawnError !== undefined) this.report(`${what}: ${r.spawnError}`);
    else if (r.signal) this.report(`${what}: killed by ${r.signal}${err}`);
    else if (r.exitCode !== 0) this.report(`${what}: exited with status ${r.exitCode}${err}`);
    return !r.timedOut && r.spawnError === undefined && !r.signal && r.exitCode === 0;
  }

  private async post(url: URL, m: DigestMessage): Promise<boolean> {
    // Only the origin goes into reports: webhook paths and queries often carry a secret token.
    const what = `notify webhook ${url.origin}`;
    const body = JSON.stringify({ subject: m.subject, text: m.text, data: m.json, urgent: m.urgent });
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'sentry-xdp' },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      // Drain the answer so the connection is released; its content does not matter.
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return true;
      this.report(`${what}: answered ${res.status}${res.statusText ? ` ${oneLine(res.statusText, 80)}` : ''}`);
      return false;
    } catch (e) {
      this.report(`${what}: ${fetchError(e, this.timeoutMs)}`);
      return false;
    }
  }
}

const TOKENS = ['SUBJECT'] as const;

/**
 * Reads notify.command with the hook lexer (src/core/command-lexer.ts) in its no-shell mode: the same quoting
 * as hook templates, but `|`, `>`, `;`, `$` and the rest are ordinary characters, since no shell ever runs.
 */
function lexNotifyCommand(command: string): Lexed {
  try {
    return lexCommand(command, { tokens: TOKENS, shell: false });
  } catch (e) {
    if (!(e instanceof CommandSyntaxError)) throw e;
    const shown = oneLine(command, 200);
    // the lexer's only other error: a lone backslash at the end
    if (e.quote === undefined) throw new SentryError('CONFIG', `notify.command ends with a lone backslash: ${shown}`, 'double it or remove it');
    throw new SentryError('CONFIG', `notify.command has an unclosed ${e.quote} quote: ${shown}`, 'close the quote, or escape it with a backslash');
  }
}

/**
 * Splits a command line into argv without a shell, `$SUBJECT$` left in place: whitespace separates, '…' is
 * literal, "…" honours \" \\ \$ \` and a backslash-newline, a backslash outside quotes escapes the next
 * character. Throws SentryError('CONFIG') for an unclosed quote or a lone trailing backslash.
 */
export function splitArgv(command: string): string[] {
  return commandWords(lexNotifyCommand(command), { SUBJECT: '$SUBJECT$' });
}

function fetchError(e: unknown, timeoutMs: number): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return `no answer within ${timeoutMs} ms`;
  // undici hides the system error in `cause` ("fetch failed" / ECONNREFUSED 127.0.0.1:9).
  const cause = e instanceof Error ? (e as Error & { cause?: unknown }).cause : undefined;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return oneLine(code ? `${code} (${cause.message})` : cause.message);
  }
  return oneLine(e instanceof Error ? e.message : String(e));
}
