import { existsSync, readFileSync } from 'node:fs';
import { defaultConfig, parseConfig, type Config } from '../core/config.js';
import { SentryError } from '../errors.js';

export const DEFAULT_CONFIG_PATH = '/etc/sentry-xdp/sentry.yaml';

/**
 * The config in force: --config, else $SENTRY_XDP_CONFIG, else the default
 * path when it exists, else the built-in defaults.
 */
export function loadConfig(path?: string): { config: Config; source: string } {
  const explicit = path ?? process.env.SENTRY_XDP_CONFIG;
  const file = explicit ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (!file) return { config: defaultConfig(), source: 'built-in defaults' };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SentryError('CONFIG', `${file}: cannot read the config file (${code})`, 'check the path given to --config');
  }
  return { config: parseConfig(text, file), source: file };
}
