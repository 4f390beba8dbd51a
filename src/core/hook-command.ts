import { SentryError } from '../errors.js';
import { parseCidr } from './addr.js';

/**
 * Hook templates: PortSentry's KILL_ROUTE / KILL_RUN_CMD strings with $TARGET$, $PORT$ and $MODE$ in them,
 * turned into something that can be run without ever handing untrusted text to a shell.
 *
 * Pure: no I/O. The adapter (src/adapters/hooks.ts) runs the plan.
 *
 * Two layers of defence:
 *  1. The token values are validated before anything else happens: the target is a canonical IP address or
 *     CIDR (only [0-9a-f.:/]), the port an integer 0-65535, the mode one word from a fixed list. None of them
 *     can contain a character that means anything to /bin/sh.
 *  2. Templates that need no shell (no pipes, redirections, `;`, `&&`, globbing, `$VAR`, ...) are split into
 *     argv here and run with no shell at all. Templates that do need one get each token replaced by its value
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
export const HOOK_MODES = ['tcp', 'udp', 'atcp', 'audp', 'stcp', 'sudp', 'manual', 'icmp', 'ip'] as const;
export type HookMode = (typeof HOOK_MODES)[number];

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

/** The token starting at `i`, if any ($TARGET$, $PORT$, $MODE$; case-sensitive, as in PortSentry). */
function tokenAt(s: string, i: number): TokenName | undefined {
  if (s.charCodeAt(i) !== 36 /* $ */) return undefined;
  for (const name of TOKEN_NAMES) {
    if (s.startsWith(name, i + 1) && s[i + 1 + name.length] === '$') return name;
  }
  return undefined;
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
  const argv = splitArgv(template, values);
  if (argv) return { kind: 'argv', argv };
  return { kind: 'shell', script: substituteForShell(template, values) };
}

// ---------------------------------------------------------------------------------------------------------
// argv: sh-like word splitting for templates that need no shell.

/** Characters that make a template need a shell when they appear unquoted. */
const SHELL_META = new Set(['|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', ']', '{', '}', '~', '\n']);

/** Words that are shell syntax or builtins without an executable of their own: these need a shell. */
const SHELL_WORDS = new Set([
  '!', '{', '}', 'if', 'then', 'else', 'elif', 'fi', 'case', 'esac', 'for', 'while', 'until', 'do', 'done', 'in',
  '.', ':', 'alias', 'break', 'cd', 'continue', 'eval', 'exec', 'exit', 'export', 'getopts', 'hash', 'local',
  'read', 'readonly', 'return', 'set', 'shift', 'source', 'times', 'trap', 'type', 'ulimit', 'umask', 'unalias',
  'unset', 'wait', 'command', 'builtin',
]);

/**
 * Splits the template into argv (single quotes, double quotes and backslashes as in sh; tokens substituted
 * inside words), or returns null when the template needs a real shell.
 */
function splitArgv(t: string, values: Record<TokenName, string>): string[] | null {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let firstWordRaw = '';
  const end = (): void => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  let i = 0;
  const n = t.length;
  while (i < n) {
    const tok = tokenAt(t, i);
    if (tok) {
      word += values[tok];
      inWord = true;
      i += tok.length + 2;
      continue;
    }
    const c = t[i]!;
    if (words.length === 0) firstWordRaw += c;
    if (c === ' ' || c === '\t') {
      end();
      i++;
      continue;
    }
    if (c === '#' && !inWord) return null; // a comment
    if (SHELL_META.has(c)) return null;
    if (c === '\\') {
      if (i + 1 >= n) throw templateError('it ends with a lone backslash');
      if (t[i + 1] === '\n') {
        i += 2; // line continuation
        continue;
      }
      if (tokenAt(t, i + 1)) {
        i++; // an escaped token still substitutes (PortSentry replaces text); the value needs no escaping
        continue;
      }
      word += t[i + 1];
      inWord = true;
      i += 2;
      continue;
    }
    if (c === "'") {
      const close = t.indexOf("'", i + 1);
      if (close < 0) throw templateError(`unterminated ' quote at column ${i + 1}`);
      word += replaceTokensBare(t.slice(i + 1, close), values);
      inWord = true;
      i = close + 1;
      continue;
    }
    if (c === '"') {
      inWord = true;
      i++;
      for (;;) {
        if (i >= n) throw templateError('unterminated " quote');
        const tk = tokenAt(t, i);
        if (tk) {
          word += values[tk];
          i += tk.length + 2;
          continue;
        }
        const d = t[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '$' || d === '`') return null; // expansion inside double quotes
        if (d === '\\' && i + 1 < n) {
          const e = t[i + 1]!;
          if (tokenAt(t, i + 1)) {
            // PortSentry's text would be "\1.2.3.4": in double quotes that backslash stays, as here
            word += d;
            i++;
            continue;
          }
          if (e === '$' || e === '`' || e === '"' || e === '\\') {
            word += e;
            i += 2;
            continue;
          }
          if (e === '\n') {
            i += 2;
            continue;
          }
        }
        word += d;
        i++;
      }
      continue;
    }
    word += c;
    inWord = true;
    i++;
  }
  end();
  if (words.length === 0) throw templateError('the command is empty');
  const first = words[0]!;
  if (SHELL_WORDS.has(first)) return null;
  if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(firstWordRaw.trim())) return null; // VAR=value cmd
  return words;
}

function replaceTokensBare(s: string, values: Record<TokenName, string>): string {
  let out = '';
  for (let i = 0; i < s.length; ) {
    const tok = tokenAt(s, i);
    if (tok) {
      out += values[tok];
      i += tok.length + 2;
    } else {
      out += s[i];
      i++;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// shell: substitute tokens into a /bin/sh script.

/**
 * Lexer states. `top` and `cmd` ($(...)) are plain unquoted shell text, the only places where a token is
 * replaced by a single-quoted value. Everywhere else the validated value is inserted bare: that is what
 * PortSentry does, and a value of [0-9A-Za-z.:/] means the same in every shell context.
 */
type Ctx =
  | { t: 'top' }
  | { t: 'cmd'; depth: number } // $( ... )
  | { t: 'brace'; depth: number } // ${ ... }
  | { t: 'arith'; depth: number } // $(( ... ))
  | { t: 'dq' } // " ... "
  | { t: 'bq' }; // ` ... `

const WORD_BREAK = new Set([' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>']);

function substituteForShell(t: string, values: Record<TokenName, string>): string {
  const stack: Ctx[] = [{ t: 'top' }];
  const heredocs: { delim: string; stripTabs: boolean }[] = [];
  let out = '';
  let i = 0;
  const n = t.length;
  let bareNext = false; // previous char was an escaping backslash or a lone `$`
  const ctx = (): Ctx => stack[stack.length - 1]!;

  while (i < n) {
    const c0 = ctx();
    const tok = tokenAt(t, i);
    if (tok) {
      const quote = (c0.t === 'top' || c0.t === 'cmd') && !bareNext;
      out += quote ? shQuote(values[tok]) : values[tok];
      i += tok.length + 2;
      bareNext = false;
      continue;
    }
    bareNext = false;
    const c = t[i]!;

    // a backslash escapes the next character in every context
    if (c === '\\') {
      out += c;
      i++;
      if (i < n && !tokenAt(t, i)) out += t[i++];
      else bareNext = true;
      continue;
    }

    if (c0.t === 'bq') {
      if (c === '`') stack.pop();
      out += c;
      i++;
      continue;
    }

    // inside double quotes and unquoted alike: command substitution, parameters, the double quote itself
    if (c === '`') {
      stack.push({ t: 'bq' });
      out += c;
      i++;
      continue;
    }
    if (c === '$') {
      i = openDollar(t, i, stack, (s) => (out += s), () => (bareNext = true));
      continue;
    }
    if (c === '"') {
      if (c0.t === 'dq') stack.pop();
      else stack.push({ t: 'dq' });
      out += c;
      i++;
      continue;
    }
    if (c0.t === 'dq') {
      out += c;
      i++;
      continue;
    }

    // Unquoted only: top, cmd, brace, arith.
    if (c === "'") {
      const close = t.indexOf("'", i + 1);
      if (close < 0) throw templateError(`unterminated ' quote at column ${i + 1}`);
      out += `'${replaceTokensBare(t.slice(i + 1, close), values)}'`;
      i = close + 1;
      continue;
    }
    if (c === '#' && (i === 0 || WORD_BREAK.has(t[i - 1]!)) && c0.t !== 'brace' && c0.t !== 'arith') {
      const nl = t.indexOf('\n', i);
      const stop = nl < 0 ? n : nl;
      out += replaceTokensBare(t.slice(i, stop), values);
      i = stop;
      continue;
    }
    if (c === '<' && t[i + 1] === '<' && t[i + 2] !== '<' && (c0.t === 'top' || c0.t === 'cmd')) {
      // Here-document: remember the delimiter; its body starts after the next newline.
      let j = i + 2;
      let stripTabs = false;
      if (t[j] === '-') {
        stripTabs = true;
        j++;
      }
      while (t[j] === ' ' || t[j] === '\t') j++;
      let delim = '';
      while (j < n && !WORD_BREAK.has(t[j]!)) {
        const d = t[j]!;
        if (d === "'" || d === '"') {
          const close = t.indexOf(d, j + 1);
          if (close < 0) throw templateError(`unterminated ${d} quote at column ${j + 1}`);
          delim += t.slice(j + 1, close);
          j = close + 1;
        } else if (d === '\\' && j + 1 < n) {
          delim += t[j + 1];
          j += 2;
        } else {
          delim += d;
          j++;
        }
      }
      if (delim !== '') heredocs.push({ delim, stripTabs });
      out += replaceTokensBare(t.slice(i, j), values);
      i = j;
      continue;
    }
    if (c === '\n' && heredocs.length > 0) {
      out += c;
      i++;
      // Bodies follow one another, each up to a line equal to its delimiter. Tokens in them are inserted bare.
      for (const h of heredocs) {
        for (;;) {
          if (i >= n) break;
          const nl = t.indexOf('\n', i);
          const stop = nl < 0 ? n : nl;
          const line = t.slice(i, stop);
          out += replaceTokensBare(line, values);
          i = stop;
          if (i < n) {
            out += '\n';
            i++;
          }
          if ((h.stripTabs ? line.replace(/^\t+/, '') : line) === h.delim) break;
        }
      }
      heredocs.length = 0;
      continue;
    }
    if (c0.t === 'cmd' || c0.t === 'arith') {
      if (c === '(') c0.depth++;
      else if (c === ')') {
        if (c0.t === 'arith' && c0.depth === 0 && t[i + 1] === ')') {
          stack.pop();
          out += '))';
          i += 2;
          continue;
        }
        if (c0.depth === 0) stack.pop();
        else c0.depth--;
      }
    } else if (c0.t === 'brace') {
      if (c === '{') c0.depth++;
      else if (c === '}') {
        if (c0.depth === 0) stack.pop();
        else c0.depth--;
      }
    }
    out += c;
    i++;
  }
  const last = ctx();
  if (last.t === 'dq') throw templateError('unterminated " quote');
  if (last.t === 'bq') throw templateError('unterminated ` command substitution');
  return out;
}

/** Handles a `$` that is not a token: $((, $(, ${ open a context; anything else leaves the `$` alone. */
function openDollar(t: string, i: number, stack: Ctx[], emit: (s: string) => void, markBare: () => void): number {
  if (t.startsWith('$((', i)) {
    stack.push({ t: 'arith', depth: 0 });
    emit('$((');
    return i + 3;
  }
  if (t.startsWith('$(', i)) {
    stack.push({ t: 'cmd', depth: 0 });
    emit('$(');
    return i + 2;
  }
  if (t.startsWith('${', i)) {
    stack.push({ t: 'brace', depth: 0 });
    emit('${');
    return i + 2;
  }
  emit('$');
  markBare(); // `$$TARGET$` is `$` followed by the value, as in PortSentry; `$'...'` would mean something else
  return i + 1;
}

/** One line for logs: how the hook runs, with its arguments quoted where they need it. */
export function describeHook(plan: HookPlan): string {
  const text =
    plan.kind === 'argv'
      ? plan.argv.map((a) => (/^[A-Za-z0-9_./:=@%+,-]+$/.test(a) ? a : shQuote(a))).join(' ')
      : `/bin/sh -c ${shQuote(plan.script)}`;
  const oneLine = text.replace(/\r/g, '\\r').replace(/\n/g, '\\n');
  return oneLine.length > 400 ? `${oneLine.slice(0, 397)}...` : oneLine;
}
