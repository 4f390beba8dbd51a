/**
 * The one lexer for command templates: hook templates (KILL_ROUTE, KILL_HOSTS_DENY, KILL_RUN_CMD, unban
 * hooks; src/core/hook-command.ts) and the notify command (src/adapters/notifier.ts).
 *
 * Pure: no I/O. It cuts a template into pieces that keep both readings of the text:
 *  - as argv: `text` pieces add their value (quotes removed, escapes resolved) to the current word, `gap`
 *    pieces (unquoted blanks) end it, `skip` pieces (line continuations) add nothing;
 *  - as a /bin/sh script: every piece's raw text as written, with each `token` piece replaced by its value,
 *    quoted where the token stands in plain unquoted shell text (`plain`), bare everywhere else.
 *
 * Quoting is sh's, the same in both modes: '...' is literal, "..." honours \" \\ \$ \` and a backslash-newline,
 * an unquoted backslash escapes the next character, a backslash-newline joins lines, and a lone backslash at
 * the end is an error (unless the template goes to sh anyway, which reads it literally). Tokens ($NAME$)
 * substitute everywhere, even inside '...' and after a backslash: that is what PortSentry's textual
 * substitution does, so users' existing strings keep working.
 *
 * `shell: true` (hooks): sh syntax is recognised and `needsShell` says why the template cannot run as argv
 * (pipes, redirections, expansions, comments, here-documents, ...). Contexts are tracked so that a token is
 * quoted only where quoting does not change its meaning. `shell: false` (notify command, which never runs a
 * shell): every character but quotes, backslashes and blanks is ordinary text, newlines separate words too.
 */

/** A template sh cannot parse: unterminated quote, lone trailing backslash. Callers add where it came from. */
export class CommandSyntaxError extends Error {
  constructor(
    message: string,
    /** The quote left open (', " or `), when that is the error. */
    readonly quote?: string,
  ) {
    super(message);
    this.name = 'CommandSyntaxError';
  }
}

type Piece =
  { kind: 'text'; raw: string; value: string } | { kind: 'gap'; raw: string } | { kind: 'skip'; raw: string } | { kind: 'token'; name: string; plain: boolean };

export interface Lexed {
  pieces: Piece[];
  /** What makes the template need /bin/sh (the first shell feature met); undefined when argv will do. */
  needsShell: string | undefined;
}

export interface LexOptions {
  /** Token names, without the dollars: ['TARGET', 'PORT', 'MODE'] for $TARGET$, $PORT$, $MODE$. Case-sensitive. */
  tokens: readonly string[];
  /** Recognise sh syntax (hooks), or treat it as plain text (commands that never run under a shell). */
  shell: boolean;
}

/**
 * Contexts of shell mode. `top` and `cmd` ($(...)) are plain unquoted shell text, the only places where a
 * token is quoted. Unquoted top-level text is also the only place where blanks split words.
 */
type Ctx =
  | { t: 'top' }
  | { t: 'cmd'; depth: number } // $( ... )
  | { t: 'brace'; depth: number } // ${ ... }
  | { t: 'arith'; depth: number } // $(( ... ))
  | { t: 'dq' } // " ... "
  | { t: 'bq' }; // ` ... `

/** Unquoted characters that mean something to sh; `$` and `` ` `` are handled with their contexts. */
const SHELL_META = new Set(['|', '&', ';', '<', '>', '(', ')', '*', '?', '[', ']', '{', '}', '~', '\n']);
/** Characters after which a `#` starts a comment. */
const WORD_BREAK = new Set([' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>']);
const SHELL_BLANKS = new Set([' ', '\t']);
const PLAIN_BLANKS = new Set([' ', '\t', '\n']);
/** Inside "...", a backslash escapes only these (sh); before anything else it stays. */
const DQ_ESCAPABLE = new Set(['$', '`', '"', '\\']);

/** Cuts `template` into pieces; throws CommandSyntaxError when sh could not parse it. */
export function lexCommand(template: string, opts: LexOptions): Lexed {
  return new Lexer(template, opts).run();
}

/** The argv words of a lexed template, tokens replaced by `values`. Meaningful when `needsShell` is undefined. */
export function commandWords(lexed: Lexed, values: Readonly<Record<string, string>>): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (const p of lexed.pieces) {
    if (p.kind === 'gap') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (p.kind === 'text' || p.kind === 'token') {
      word += p.kind === 'text' ? p.value : (values[p.name] ?? '');
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** The first word as written (tokens left out), to recognise `VAR=value cmd`. */
export function firstWordRaw(lexed: Lexed): string {
  let raw = '';
  let inWord = false;
  for (const p of lexed.pieces) {
    if (p.kind === 'gap') {
      if (inWord) break;
    } else if (p.kind === 'token') inWord = true;
    else {
      raw += p.raw;
      inWord ||= p.kind === 'text';
    }
  }
  return raw;
}

/** The template as a script: raw text, tokens replaced by `quote(value)` where `plain`, by the value elsewhere. */
export function renderScript(lexed: Lexed, values: Readonly<Record<string, string>>, quote: (s: string) => string): string {
  let out = '';
  for (const p of lexed.pieces) {
    if (p.kind !== 'token') out += p.raw;
    else out += p.plain ? quote(values[p.name] ?? '') : (values[p.name] ?? '');
  }
  return out;
}

class Lexer {
  private readonly pieces: Piece[] = [];
  private needsShell: string | undefined;
  private readonly stack: Ctx[] = [{ t: 'top' }];
  private readonly heredocs: { delim: string; stripTabs: boolean }[] = [];
  private i = 0;
  /** The previous character was an escaping backslash or a lone `$`: the next token goes in bare. */
  private bareNext = false;
  /** A `#` here would start a comment (sh: at the start of a word). */
  private wordStart = true;
  private loneBackslash = false;

  constructor(
    private readonly s: string,
    private readonly opts: LexOptions,
  ) {}

  run(): Lexed {
    while (this.i < this.s.length) this.step();
    const last = this.ctx();
    if (last.t === 'dq') throw new CommandSyntaxError('unterminated " quote', '"');
    if (last.t === 'bq') throw new CommandSyntaxError('unterminated ` command substitution', '`');
    // sh would read a trailing backslash literally; as argv it is almost surely a cut-off line
    if (this.loneBackslash && this.needsShell === undefined) throw new CommandSyntaxError('it ends with a lone backslash');
    return { pieces: this.pieces, needsShell: this.needsShell };
  }

  private ctx(): Ctx {
    return this.stack[this.stack.length - 1]!;
  }

  private step(): void {
    const tok = this.tokenAt(this.i);
    if (tok !== undefined) return this.token(tok);
    this.bareNext = false;
    const c = this.s[this.i]!;
    const ctx = this.ctx();
    if (c === '\\') return this.backslash(ctx); // escapes the next character in every context
    if (ctx.t === 'bq') return this.inBackquotes(c);
    if (this.opts.shell && (c === '`' || c === '$')) return this.expansion(c);
    if (c === '"') return this.doubleQuote(ctx);
    if (ctx.t === 'dq') return this.char(c, c);
    if (c === "'") return this.singleQuoted();
    if (this.opts.shell) return this.unquotedShell(c, ctx);
    if (PLAIN_BLANKS.has(c)) return this.gap(c);
    return this.char(c, c);
  }

  // --- emitting -------------------------------------------------------------------------------------

  private text(raw: string, value: string): void {
    const last = this.pieces[this.pieces.length - 1];
    if (last?.kind === 'text') {
      last.raw += raw;
      last.value += value;
    } else this.pieces.push({ kind: 'text', raw, value });
    this.wordStart = WORD_BREAK.has(raw[raw.length - 1]!);
  }

  /** One character of the template, consumed. */
  private char(raw: string, value: string): void {
    this.text(raw, value);
    this.i++;
  }

  private gap(raw: string): void {
    this.pieces.push({ kind: 'gap', raw });
    this.wordStart = true;
    this.i++;
  }

  private token(name: string): void {
    const ctx = this.ctx();
    this.pieces.push({ kind: 'token', name, plain: (ctx.t === 'top' || ctx.t === 'cmd') && !this.bareNext });
    this.i += name.length + 2;
    this.bareNext = false;
    this.wordStart = false;
  }

  /** Text inserted as it is, its tokens bare: inside '...', comments, here-documents. */
  private textWithTokens(s: string): void {
    let from = 0;
    for (let j = 0; j < s.length;) {
      const name = tokenAt(s, j, this.opts.tokens);
      if (name === undefined) {
        j++;
        continue;
      }
      if (j > from) this.text(s.slice(from, j), s.slice(from, j));
      this.pieces.push({ kind: 'token', name, plain: false });
      this.wordStart = false;
      j += name.length + 2;
      from = j;
    }
    if (from < s.length) this.text(s.slice(from), s.slice(from));
  }

  private needShell(why: string): void {
    this.needsShell ??= why;
  }

  private tokenAt(i: number): string | undefined {
    return tokenAt(this.s, i, this.opts.tokens);
  }

  // --- quoting --------------------------------------------------------------------------------------

  private backslash(ctx: Ctx): void {
    const next = this.s[this.i + 1];
    if (next === undefined) {
      if (ctx.t === 'top') this.loneBackslash = true;
      return this.char('\\', ctx.t === 'dq' ? '\\' : '');
    }
    if (this.tokenAt(this.i + 1) !== undefined) {
      // PortSentry replaces text: `\$TARGET$` is a backslash before the value. sh drops that backslash
      // outside quotes and keeps it inside "...", and so do the words here.
      this.char('\\', ctx.t === 'dq' ? '\\' : '');
      this.wordStart = false;
      this.bareNext = true;
      return;
    }
    if (next === '\n') {
      this.pieces.push({ kind: 'skip', raw: '\\\n' }); // a line continuation: no word break, no character
      this.i += 2;
      return;
    }
    const value = ctx.t === 'dq' && !DQ_ESCAPABLE.has(next) ? `\\${next}` : next;
    this.text(`\\${next}`, value);
    this.i += 2;
    this.wordStart = false;
  }

  private doubleQuote(ctx: Ctx): void {
    if (ctx.t === 'dq') this.stack.pop();
    else this.stack.push({ t: 'dq' });
    this.char('"', '');
  }

  private singleQuoted(): void {
    const close = this.s.indexOf("'", this.i + 1);
    if (close < 0) throw new CommandSyntaxError(`unterminated ' quote at column ${this.i + 1}`, "'");
    this.text("'", '');
    this.textWithTokens(this.s.slice(this.i + 1, close));
    this.text("'", '');
    this.i = close + 1;
  }

  // --- shell syntax ---------------------------------------------------------------------------------

  private inBackquotes(c: string): void {
    if (c === '`') this.stack.pop();
    this.char(c, c);
  }

  /** `` ` ``, $((, $(, ${ open a context; any other `$` stays as it is (in "..." too). */
  private expansion(c: string): void {
    if (c === '`') {
      this.needShell('a `command` substitution');
      this.stack.push({ t: 'bq' });
      return this.char(c, c);
    }
    this.needShell('a $ expansion');
    const opener = ['$((', '$(', '${'].find((o) => this.s.startsWith(o, this.i));
    if (opener === undefined) {
      this.char('$', '$');
      this.bareNext = true; // `$$TARGET$` is `$` then the value, as in PortSentry; `$'...'` would mean something else
      return;
    }
    this.stack.push(opener === '$((' ? { t: 'arith', depth: 0 } : opener === '$(' ? { t: 'cmd', depth: 0 } : { t: 'brace', depth: 0 });
    this.text(opener, opener);
    this.i += opener.length;
  }

  /** Unquoted text in shell mode: top level, $(...), ${...}, $((...)). */
  private unquotedShell(c: string, ctx: Ctx): void {
    const plainText = ctx.t === 'top' || ctx.t === 'cmd';
    if (c === '#' && this.wordStart && ctx.t !== 'brace' && ctx.t !== 'arith') return this.comment();
    if (c === '<' && this.s[this.i + 1] === '<' && this.s[this.i + 2] !== '<' && plainText) return this.heredocOperator();
    if (c === '\n' && this.heredocs.length > 0) return this.heredocBodies();
    if (ctx.t === 'top' && SHELL_BLANKS.has(c)) return this.gap(c);
    if (SHELL_META.has(c)) this.needShell(`the shell character ${JSON.stringify(c)}`);
    if (ctx.t !== 'top' && this.closes(c, ctx)) return;
    this.char(c, c);
  }

  /** Tracks nesting inside $(...), $((...)) and ${...}; true when it consumed the characters itself. */
  private closes(c: string, ctx: Ctx): boolean {
    if (ctx.t === 'cmd' || ctx.t === 'arith') {
      if (c === '(') ctx.depth++;
      else if (c === ')') {
        if (ctx.t === 'arith' && ctx.depth === 0 && this.s[this.i + 1] === ')') {
          this.stack.pop();
          this.text('))', '))');
          this.i += 2;
          return true;
        }
        if (ctx.depth === 0) this.stack.pop();
        else ctx.depth--;
      }
    } else if (ctx.t === 'brace') {
      if (c === '{') ctx.depth++;
      else if (c === '}') {
        if (ctx.depth === 0) this.stack.pop();
        else ctx.depth--;
      }
    }
    return false;
  }

  private comment(): void {
    this.needShell('a comment');
    const nl = this.s.indexOf('\n', this.i);
    const stop = nl < 0 ? this.s.length : nl;
    this.textWithTokens(this.s.slice(this.i, stop));
    this.i = stop;
  }

  /** `<<DELIM` or `<<-DELIM`: remember the delimiter; the body starts after the next newline. */
  private heredocOperator(): void {
    this.needShell('a here-document');
    const s = this.s;
    let j = this.i + 2;
    let stripTabs = false;
    if (s[j] === '-') {
      stripTabs = true;
      j++;
    }
    while (s[j] === ' ' || s[j] === '\t') j++;
    let delim = '';
    while (j < s.length && !WORD_BREAK.has(s[j]!)) {
      const d = s[j]!;
      if (d === "'" || d === '"') {
        const close = s.indexOf(d, j + 1);
        if (close < 0) throw new CommandSyntaxError(`unterminated ${d} quote at column ${j + 1}`, d);
        delim += s.slice(j + 1, close);
        j = close + 1;
      } else if (d === '\\' && j + 1 < s.length) {
        delim += s[j + 1];
        j += 2;
      } else {
        delim += d;
        j++;
      }
    }
    if (delim !== '') this.heredocs.push({ delim, stripTabs });
    this.textWithTokens(s.slice(this.i, j));
    this.i = j;
  }

  /** Bodies follow one another, each up to a line equal to its delimiter. Tokens in them go in bare. */
  private heredocBodies(): void {
    const s = this.s;
    this.char('\n', '\n');
    for (const h of this.heredocs) {
      while (this.i < s.length) {
        const nl = s.indexOf('\n', this.i);
        const stop = nl < 0 ? s.length : nl;
        const line = s.slice(this.i, stop);
        this.textWithTokens(line);
        this.i = stop;
        if (this.i < s.length) this.char('\n', '\n');
        if ((h.stripTabs ? line.replace(/^\t+/, '') : line) === h.delim) break;
      }
    }
    this.heredocs.length = 0;
    this.wordStart = true;
  }
}

/** The token starting at `i`, if any: `$NAME$` for one of `names`. */
function tokenAt(s: string, i: number, names: readonly string[]): string | undefined {
  if (s.charCodeAt(i) !== 36 /* $ */) return undefined;
  for (const name of names) {
    if (s.startsWith(name, i + 1) && s[i + 1 + name.length] === '$') return name;
  }
  return undefined;
}
