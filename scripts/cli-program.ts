/**
 * The CLI's commander program, for the generators (man page, bash completion) and their tests.
 *
 * src/cli/main.ts runs main(process.argv) when it is imported, and main ends with process.exit().
 * Until it gains an entry-point guard, it is imported here with a harmless argv (--version), its
 * stdout write and its process.exit() caught, and everything put back before buildProgram() is used.
 * With a guard in place nothing runs at import and the short wait below simply times out.
 */
import type { Command } from 'commander';

export async function loadProgram(): Promise<Command> {
  const saved = { argv: process.argv, exit: process.exit, write: process.stdout.write, exitCode: process.exitCode };
  let exited: () => void = () => {};
  const done = new Promise<void>((r) => (exited = r));
  process.argv = [process.execPath, 'sentry-xdp', '--version'];
  process.exit = (() => exited()) as typeof process.exit;
  process.stdout.write = ((_chunk: unknown, a?: unknown, b?: unknown) => {
    const cb = typeof a === 'function' ? a : typeof b === 'function' ? b : undefined;
    if (cb) queueMicrotask(() => (cb as () => void)());
    return true;
  }) as typeof process.stdout.write;
  const umask = process.umask();
  try {
    const mod = (await import('../src/cli/main.js')) as { buildProgram: () => Command };
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    return mod.buildProgram();
  } finally {
    process.argv = saved.argv;
    process.exit = saved.exit;
    process.stdout.write = saved.write;
    process.exitCode = saved.exitCode;
    process.umask(umask);
  }
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
