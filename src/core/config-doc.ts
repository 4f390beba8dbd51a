/**
 * The config's own documentation, generated from ConfigSchema and CONFIG_DOCS
 * (src/core/config.ts): `config defaults` (every key with its default and a
 * one-line comment, a file `config check` accepts) and README's table of keys.
 * One source, so neither can drift from what the daemon accepts.
 */
import { stringify } from 'yaml';
import { z } from 'zod';
import { CONFIG_DOCS, ConfigSchema, type KeyDoc } from './config.js';

/** A key of the config, as the schema declares it. */
export interface ConfigKey {
  /** Dotted path, e.g. "escalation.max". */
  path: string;
  /** Nesting depth (0 at the top level). */
  depth: number;
  /** A section holds keys (escalation, redis); a leaf holds a value. */
  section: boolean;
  /** The default as written in a config file (not as parsed: "60s", not 60); undefined when there is none. */
  default: unknown;
  hasDefault: boolean;
  doc: KeyDoc;
}

/** The schema under defaults, optionals and refinements, with the outermost default. */
function unwrap(s: z.ZodTypeAny): { inner: z.ZodTypeAny; hasDefault: boolean; def: unknown } {
  let hasDefault = false;
  let def: unknown;
  for (;;) {
    if (s instanceof z.ZodDefault) {
      if (!hasDefault) {
        hasDefault = true;
        def = s._def.defaultValue();
      }
      s = s._def.innerType;
    } else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s._def.innerType;
    else if (s instanceof z.ZodEffects) s = s._def.schema;
    else return { inner: s, hasDefault, def };
  }
}

/** Every key of the schema, sections before their keys, in the schema's order. */
export function configKeys(schema: z.ZodTypeAny = ConfigSchema, docs: Readonly<Record<string, KeyDoc>> = CONFIG_DOCS): ConfigKey[] {
  const out: ConfigKey[] = [];
  const walk = (obj: z.AnyZodObject, prefix: string, depth: number) => {
    for (const [name, s] of Object.entries(obj.shape as Record<string, z.ZodTypeAny>)) {
      const path = prefix ? `${prefix}.${name}` : name;
      const { inner, hasDefault, def } = unwrap(s);
      const doc = docs[path];
      if (!doc) throw new Error(`config key ${path} has no entry in CONFIG_DOCS (src/core/config.ts)`);
      const section = inner instanceof z.ZodObject;
      out.push({ path, depth, section, default: section ? undefined : def, hasDefault, doc });
      if (section) walk(inner as z.AnyZodObject, path, depth + 1);
    }
  };
  walk(unwrap(schema).inner as z.AnyZodObject, '', 0);
  return out;
}

/** A value as YAML on one line (flow style). */
function flow(v: unknown): string {
  return stringify(v, { collectionStyle: 'flow', lineWidth: 0 }).trimEnd();
}

/**
 * The whole config with every default, one comment line above each key.
 * Keys without a default (an optional section such as redis, or a value such
 * as notify.webhook) are printed commented out, with an example.
 */
export function defaultsYaml(keys: readonly ConfigKey[] = configKeys()): string {
  const lines = [
    '# sentry-xdp config: every key with its default (`sentry-xdp config defaults`).',
    '# Every key is optional; delete what you keep at its default. Lines starting with "# " and a key are',
    '# settings without a default: uncomment them to use them. See README "Configuration".',
  ];
  let off: number | undefined; // the depth of the commented-out section we are in
  for (const k of keys) {
    if (off !== undefined && k.depth <= off) off = undefined;
    const name = k.path.slice(k.path.lastIndexOf('.') + 1);
    // inside a commented-out section: "#" at the section's indent, the nesting after it
    const at = off === undefined ? '  '.repeat(k.depth) : `${'  '.repeat(off)}# ${'  '.repeat(k.depth - off)}`;
    const key = off === undefined && !k.hasDefault ? `${at}# ` : at;
    if (k.section && k.depth === 0) lines.push('');
    lines.push(`${at}# ${k.doc.doc}${k.doc.portsentry ? ` (PortSentry's ${k.doc.portsentry})` : ''}`);
    if (k.section) {
      lines.push(`${key}${name}:`);
      if (off === undefined && !k.hasDefault) off = k.depth;
    } else {
      lines.push(`${key}${name}: ${flow(k.hasDefault ? k.default : k.doc.example)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

function shownDefault(k: ConfigKey): string {
  if (k.doc.shown) return k.doc.shown;
  if (!k.hasDefault) return 'not set';
  const v = k.default;
  if (Array.isArray(v) && v.length === 0) return 'none';
  if (v === '') return 'empty';
  return `\`${flow(v)}\``;
}

/** README's table of keys: every key that holds a value, in the schema's order. */
export function configTable(keys: readonly ConfigKey[] = configKeys()): string {
  const rows = ['| key | PortSentry | default | meaning |', '|---|---|---|---|'];
  for (const k of keys) {
    if (k.section) continue;
    const meaning = k.doc.more ? `${k.doc.doc}; ${k.doc.more}` : k.doc.doc;
    rows.push(`| \`${k.path}\` | ${k.doc.portsentry ?? ''} | ${cell(shownDefault(k))} | ${cell(meaning)} |`);
  }
  return `${rows.join('\n')}\n`;
}

export const TABLE_BEGIN = '<!-- config-table: generated from src/core/config.ts by `make readme-config`; edit there, not here -->';
export const TABLE_END = '<!-- /config-table -->';

/** README with the text between the markers replaced by the table; throws when the markers are missing. */
export function withConfigTable(readme: string, table: string = configTable()): string {
  const a = readme.indexOf(TABLE_BEGIN);
  const b = readme.indexOf(TABLE_END);
  if (a < 0 || b < a) throw new Error(`README.md has no "${TABLE_BEGIN}" ... "${TABLE_END}" markers`);
  return `${readme.slice(0, a + TABLE_BEGIN.length)}\n${table}${readme.slice(b)}`;
}
