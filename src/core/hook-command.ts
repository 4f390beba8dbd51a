import { SentryError } from '../errors.js';
import { parseCidr } from './addr.js';
import { CommandSyntaxError, commandWords, firstWordRaw, lexCommand, renderScript, type Lexed } from './command-lexer.js';

/**
 * Hook templates: PortSentry's KILL_ROUTE / KILL_RUN_CMD strings with $TARGET$, $PORT$ and $MODE$ in them,
 * turned into something that can be run without ever handing untrusted text to a shell.
 *
 * Pure: no I/O. The adapter (src/adapters/hooks.ts) runs the plan. The template is read by the one command
 * lexer (src/core/command-lexer.ts), which the notify command shares.
 *
 * Two layers of defence:
 *  1. The token values are validated before anything else happens: the target is a canonical IP address or
 *     CIDR (only [0-9a-f.:/]), the port an integer 0-65535, the mode one word from a fixed list. None of them
 *     can contain a character that means anything to /bin/sh.
 *  2. Templates that need no shell (no pipes, redirections, `;`, `&&`, globbing, `$VAR`, ...) are split into
 *     argv and run with no shell at all. Templates that do need one get each token replaced by its value
 *     single-quoted wherever the token stands in plain unquoted shell text, and by the bare (validated) value
 *     where quoting would change the meaning: inside '...' or "...", in a here-document, after a backslash or a
 *     `$`, inside ${...}, $((...)), `...` and comments. The result is exactly what PortSentry's textual
 *     substitution would give, so users' existing strings keep working.
 */

export interface HookTokens {
  target: string;
  port: number;
  mode: string;
}

export type HookPlan = { kind: 'argv'; argv: string[] } | { kind: 'shell'; script: string };

/**
 * PortSentry's modes (tcp, udp, atcp, audp, stcp, sudp), `manual` for bans typed by an admin, and
 * `icmp` / `ip` for the probes PortSentry never saw (ping sweeps, IPv6 header-chain evasion).
 */
const HOOK_MODES = ['tcp', 'udp', 'atcp', 'audp', 'stcp', 'sudp', 'manual', 'icmp', 'ip'] as const;

const TOKEN_NAMES = ['TARGET', 'PORT', 'MODE'] as const;
type TokenName = (typeof TOKEN_NAMES)[number];

/** What a validated value may contain: nothing /bin/sh treats specially in any context. */
const SAFE_VALUE = /^[0-9A-Za-z.:/]+$/;
const TARGET_CHARS = /^[0-9a-fA-F.:/]+$/;

/** Checks the tokens; throws SentryError('USAGE') with one line naming the bad one. */
export function validateHookTokens(tokens: HookTokens): void {
  const { target, port, mode } = tokens;
  if (typeof target !== 'string' || target === '' || !TARGET_CHARS.test(target) || !isCanonicalCidr(target)) {
    throw new SentryError(
      'USAGE',
      `hook token $TARGET$ ${show(target)} is not an IP address or CIDR in canonical form`,
      'pass an address like 1.2.3.4, 2001:db8::1 or 203.0.113.0/24 as printed by parseCidr',
    );
  }
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SentryError('USAGE', `hook token $PORT$ ${show(port)} is not a port number`, 'a port is an integer 0-65535');
  }
  if (typeof mode !== 'string' || !(HOOK_MODES as readonly string[]).includes(mode)) {
    throw new SentryError('USAGE', `hook token $MODE$ ${show(mode)} is not a known mode`, `use one of ${HOOK_MODES.join(', ')}`);
  }
}

function isCanonicalCidr(target: string): boolean {
  try {
    return parseCidr(target).text === target;
  } catch {
    return false;
  }
}

/** One-line, bounded rendering of a value for an error message (JSON escapes newlines and control bytes). */
function show(v: unknown): string {
  let s: string;
  try {
    s = typeof v === 'string' ? JSON.stringify(v) : typeof v === 'number' ? String(v) : `(${typeof v})`;
  } catch {
    s = '(unprintable)';
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Single-quotes a string for /bin/sh: 'it'\''s'. Safe for any input. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function tokenValues(tokens: HookTokens): Record<TokenName, string> {
  const values: Record<TokenName, string> = { TARGET: tokens.target, PORT: String(tokens.port), MODE: tokens.mode };
  // Belt and braces: whatever validateHookTokens may become, a value substituted bare must be inert.
  for (const name of TOKEN_NAMES) {
    if (!SAFE_VALUE.test(values[name])) {
      throw new SentryError('USAGE', `hook token $${name}$ ${show(values[name])} contains characters not allowed in a hook`);
    }
  }
  return values;
}

function templateError(message: string): SentryError {
  return new SentryError('USAGE', `hook template: ${message}`, 'write it as you would for /bin/sh, e.g. /sbin/iptables -I INPUT -s $TARGET$ -j DROP');
}

/**
 * Plans how to run `template` with `tokens` substituted. Throws SentryError('USAGE') for bad tokens or a
 * template that cannot be parsed (empty, unterminated quote, NUL byte).
 */
export function planHook(template: string, tokens: HookTokens): HookPlan {
  validateHookTokens(tokens);
  const values = tokenValues(tokens);
  if (typeof template !== 'string' || template.trim() === '') throw templateError('the command is empty');
  if (template.includes('\0')) throw templateError('the command contains a NUL byte');
  let lexed: Lexed;
  try {
    lexed = lexCommand(template, { tokens: TOKEN_NAMES, shell: true });
  } catch (e) {
    if (e instanceof CommandSyntaxError) throw templateError(e.message);
    throw e;
  }
  if (lexed.needsShell === undefined) {
    const argv = commandWords(lexed, values);
    if (argv.length === 0) throw templateError('the command is empty');
    if (!startsLikeShell(argv[0]!, lexed)) return { kind: 'argv', argv };
  }
  return { kind: 'shell', script: renderScript(lexed, values, shQuote) };
}

/** Words that are shell syntax or builtins without an executable of their own: these need a shell. */
const SHELL_WORDS = new Set([
  '!',
  '{',
  '}',
  'if',
  'then',
  'else',
  'elif',
  'fi',
  'case',
  'esac',
  'for',
  'while',
  'until',
  'do',
  'done',
  'in',
  '.',
  ':',
  'alias',
  'break',
  'cd',
  'continue',
  'eval',
  'exec',
  'exit',
  'export',
  'getopts',
  'hash',
  'local',
  'read',
  'readonly',
  'return',
  'set',
  'shift',
  'source',
  'times',
  'trap',
  'type',
  'ulimit',
  'umask',
  'unalias',
  'unset',
  'wait',
  'command',
  'builtin',
]);

/** A keyword or builtin first, or `VAR=value cmd`: plain words that only a shell can run. */
function startsLikeShell(first: string, lexed: Lexed): boolean {
  return SHELL_WORDS.has(first) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(firstWordRaw(lexed));
}

/** One line for logs: how the hook runs, with its arguments quoted where they need it. */
export function describeHook(plan: HookPlan): string {
  const text =
    plan.kind === 'argv' ? plan.argv.map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : shQuote(a))).join(' ') : `/bin/sh -c ${shQuote(plan.script)}`;
  const oneLine = text.replace(/\r/g, '\\r').replace(/\n/g, '\\n');
  return oneLine.length > 400 ? `${oneLine.slice(0, 397)}...` : oneLine;
}
