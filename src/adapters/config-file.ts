import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultConfig, parseConfig, type Config } from '../core/config.js';
import { SentryError } from '../errors.js';

const DEFAULT_CONFIG_PATH = '/etc/sentry-xdp/sentry.yaml';
/** loadConfig's source when no file is read. */
export const BUILT_IN = 'built-in defaults';

/** The file loadConfig(path) reads, or undefined for the built-in defaults. */
export function configFile(path?: string): string | undefined {
  return path ?? process.env.SENTRY_XDP_CONFIG ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
}

/**
 * The config in force: --config, else $SENTRY_XDP_CONFIG, else the default
 * path when it exists, else the built-in defaults.
 */
export function loadConfig(path?: string): { config: Config; source: string } {
  const file = configFile(path);
  if (!file) return { config: defaultConfig(), source: BUILT_IN };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SentryError('CONFIG', `${file}: cannot read the config file (${code})`, 'check the path given to --config');
  }
  return { config: parseConfig(text, file), source: file };
}

/**
 * The config file a CLI command uses. `-c` or $SENTRY_XDP_CONFIG when given;
 * else the running daemon's (so that a ban goes to the store and the fleet
 * the daemon uses); else undefined (loadConfig's default path or built-in
 * defaults). A given file that is not the daemon's gets one warning line.
 */
export function configFor(
  explicit: string | undefined,
  daemon: { pid: number; path: string | null } | undefined,
  warn: (line: string) => void,
): string | undefined {
  const given = explicit ?? process.env.SENTRY_XDP_CONFIG;
  if (!daemon) return given;
  if (given === undefined) return daemon.path ?? undefined;
  if (resolve(given) !== daemon.path) {
    warn(`warning: the running daemon (pid ${daemon.pid}) uses ${daemon.path ?? 'the built-in defaults'}; this command uses ${given}`);
  }
  return given;
}
