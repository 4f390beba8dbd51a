/**
 * A verb of the command line, described as data: its name, summary, arguments, options, examples and
 * handler. src/cli/program.ts turns these into the commander program (commander stays the parser), and
 * the man page and the bash completion come from that same program (scripts/cli-program.ts).
 */
import type { Paths } from '../adapters/paths.js';

interface ArgumentSpec {
  /** As commander writes it: `<iface...>` required and variadic, `[addr]` optional. */
  name: string;
  description: string;
}

export interface OptionSpec {
  /** As commander writes it: `-o, --output <file>`, `--no-daemon`. */
  flags: string;
  description: string;
  choices?: readonly string[];
  default?: string;
  /** Turns the text typed into the value the handler gets; throws a SentryError on bad input. */
  parse?: (value: string) => unknown;
}

/** What a handler gets: the operands typed, its options, and the global options resolved. */
export interface VerbCall<O> {
  /** The positional arguments, flattened (a verb has at most one, variadic or not). */
  operands: string[];
  opts: O;
  /** Pin root, run and state directories: --pin-root etc., else the env variables, else the defaults. */
  paths(): Paths;
  /** The config file for this command: -c, $SENTRY_XDP_CONFIG, else the running daemon's. */
  config(): string | undefined;
  /** -c exactly as given (attach does not follow a running daemon's config). */
  configFlag: string | undefined;
}

export interface Verb<O = Record<string, unknown>> {
  name: string;
  summary: string;
  arguments?: readonly ArgumentSpec[];
  options?: readonly OptionSpec[];
  /** Command lines shown under "Examples:" in the verb's help. */
  examples: readonly string[];
  /** A verb group (`config`, `allow`) has sub-verbs and no handler of its own. */
  verbs?: readonly Verb[];
  run?: (call: VerbCall<O>) => void | Promise<void>;
}

/** A verb whose handler reads its options as `O` (commander builds them from `options`). */
export function defineVerb<O extends object = Record<string, never>>(v: Verb<O>): Verb {
  return v as unknown as Verb;
}
