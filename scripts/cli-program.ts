/**
 * The CLI's commander program, for the generators (man page, bash completion) and their tests.
 * src/cli/program.ts builds it from the verbs' descriptions and has no side effects on import
 * (src/cli/main.ts, the entry point, runs the command line when imported).
 */
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/program.js';

export async function loadProgram(): Promise<Command> {
  return buildProgram();
}

/** Every command under `c`, depth first, with its path of names (e.g. ['config', 'check']). */
export function walkCommands(c: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  const out: { path: string[]; cmd: Command }[] = [];
  for (const sub of c.commands) {
    const p = [...path, sub.name()];
    out.push({ path: p, cmd: sub }, ...walkCommands(sub, p));
  }
  return out;
}
