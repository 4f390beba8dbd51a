/**
 * The end-to-end test lab: two network namespaces joined by a veth pair.
 *
 *   gateway ns  sxgw-<pid>-<n>   veth sxg<pid>n<n>  198.18.0.1/24  2001:db8::1/64
 *   attacker ns sxatk-<pid>-<n>  veth sxa<pid>n<n>  198.18.0.2/24  2001:db8::2/64
 *
 * No default route in either: traffic cannot leave the pair. The gateway side
 * runs under `nsenter --net` (network namespace only), because `ip netns exec`
 * remounts /sys and would hide the bpffs pins. Each lab has its own pin root and
 * run dir (SENTRY_XDP_PIN_ROOT / SENTRY_XDP_RUN_DIR), and tears everything down
 * on `t.after` / `after`, on process exit and on SIGINT/SIGTERM. Nothing here
 * sends traffic from the root namespace.
 */
import { after as suiteAfter } from 'node:test';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is compiled to dist/test/helpers/lab.js). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const BIN = join(REPO, 'bin', 'sentry-xdp');

export const GW4 = '198.18.0.1';
export const ATK4 = '198.18.0.2';
export const GW6 = '2001:db8::1';
export const ATK6 = '2001:db8::2';

export const PATH = [process.env.PATH ?? '', '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].filter(Boolean).join(delimiter);

export interface RunResult {
  cmd: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Where a tool is on PATH, or undefined. */
export function whichTool(name: string): string | undefined {
  for (const dir of PATH.split(delimiter)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** Throws (failing the test, never skipping it) when a tool the test needs is missing. */
export function requireTools(...names: string[]): void {
  const missing = names.filter((n) => !whichTool(n));
  if (missing.length) {
    throw new Error(
      `required tool(s) missing: ${missing.join(', ')}; install them (e.g. \`apt-get install nmap iputils-ping hping3 util-linux iproute2 bpftool\`) to run the end-to-end tests`,
    );
  }
}

/** Runs a command to completion (killed with SIGKILL after timeoutMs), never throwing on a non-zero exit. */
export function run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (!file) throw new Error('run: empty command');
  const cmd = argv.join(' ');
  return new Promise((resolve) => {
    const child = spawn(file, args, { env: { ...process.env, PATH, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ cmd, code: 127, signal: null, stdout, stderr: `${stderr}${e.message}\n`, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ cmd, code, signal, stdout, stderr, timedOut });
    });
  });
}

/** A command's result, for assertion messages. */
export function describeRun(r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
  return `\`${r.cmd}\` (${how})\n--- stdout ---\n${r.stdout}--- stderr ---\n${r.stderr}`;
}

export function runSync(argv: string[], env?: NodeJS.ProcessEnv): RunResult {
  const [file, ...args] = argv;
  const r = spawnSync(file!, args, { env: { ...process.env, PATH, ...env }, encoding: 'utf8', timeout: 20_000 });
  return {
    cmd: argv.join(' '),
    code: r.status,
    signal: r.signal,
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? (r.error ? r.error.message : ''),
    timedOut: false,
  };
}

export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One JSON line of the daemon (`attach --json`). */
export type DaemonEvent = Record<string, unknown> & { event?: string };

/** nmap, small and fast (-T5, one retry, short timeouts), every port's state as XML on stdout. */
export function nmapArgv(scan: string[], ports: string, targets: string[], extra: string[] = []): string[] {
  const v6 = targets[0]?.includes(':') ?? false;
  return [
    'nmap',
    ...(v6 ? ['-6'] : []),
    ...extra,
    ...scan,
    '-Pn',
    '-n',
    '-T5',
    '--max-retries',
    '1',
    '--host-timeout',
    '30s',
    '--initial-rtt-timeout',
    '100ms',
    '--max-rtt-timeout',
    '200ms',
    '-p',
    ports,
    '-oX',
    '-',
    ...targets,
  ];
}

/** The sentry-xdp daemon, running in the background in the gateway namespace. */
export class Daemon {
  readonly lines: string[] = [];
  stderr = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  exited = false;
  readonly done: Promise<void>;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly child: ChildProcess,
    readonly cmd: string,
  ) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      this.wake();
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
    });
    this.done = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        this.wake();
        resolve();
      });
      child.on('error', (e) => {
        this.stderr += `spawn error: ${e.message}\n`;
      });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** Everything the daemon printed so far, for assertion messages. */
  output(): string {
    const state = this.exited ? `exited (code ${this.exitCode}, signal ${this.exitSignal})` : `running (pid ${this.child.pid})`;
    return `daemon \`${this.cmd}\`, ${state}\n--- daemon stdout ---\n${this.lines.join('\n')}\n--- daemon stderr ---\n${this.stderr}`;
  }

  /** The JSON lines (`--json`) from index `from` on, parsed; a line that is not JSON fails the test. */
  events(from = 0): DaemonEvent[] {
    return this.lines.slice(from).map((l) => {
      try {
        return JSON.parse(l) as DaemonEvent;
      } catch {
        throw new Error(`with --json every daemon line should be JSON; this one is not: ${l}\n${this.output()}`);
      }
    });
  }

  /** Lines (from index `from` on) that match re. */
  matching(re: RegExp, from = 0): string[] {
    return this.lines.slice(from).filter((l) => re.test(l));
  }

  /** The first line (from index `from` on) matching re; rejects on timeout or when the daemon exits first. */
  waitForLine(re: RegExp, timeoutMs: number, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.lines.slice(from).find((l) => re.test(l));
        if (hit !== undefined) {
          finish();
          resolve(hit);
          return true;
        }
        if (this.exited) {
          finish();
          reject(new Error(`the daemon exited before printing a line matching ${re}\n${this.output()}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no daemon line matching ${re} within ${timeoutMs} ms\n${this.output()}`));
      }, timeoutMs);
      const waiter = () => void check();
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      if (!check()) this.waiters.add(waiter);
    });
  }

  /** SIGINT, then SIGKILL when it has not exited within timeoutMs. Resolves once it has exited. */
  async stop(timeoutMs = 5000): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }> {
    let killed = false;
    if (!this.exited) {
      this.child.kill('SIGINT');
      const t = setTimeout(() => {
        killed = true;
        this.child.kill('SIGKILL');
      }, timeoutMs);
      await this.done;
      clearTimeout(t);
    }
    return { code: this.exitCode, signal: this.exitSignal, killed };
  }
}

export interface DaemonOptions {
  /** Interfaces to attach to (default: the lab's gateway-side one). */
  ifaces?: string[];
  config?: string; // path to a config file
  json?: boolean;
  args?: string[]; // more arguments for `attach`
  readyTimeoutMs?: number;
  /** Wait for the "alerts follow" line before returning (default true). */
  waitReady?: boolean;
}

export interface NmapResult {
  run: RunResult;
  /** Every scanned port's state, including those nmap folded into <extraports>. */
  states: Map<string, number>; // state -> count
  listed: Array<{ port: number; proto: string; state: string }>;
  total: number;
}

/** `status --json` (README "JSON output"). */
export interface StatusJson {
  version: number;
  pinRoot: string;
  config: string;
  loaded: boolean;
  daemonPid: number | null;
  daemon: Record<string, unknown> | null;
  interfaces: Array<{ name: string; ifindex: number; progId: number; mode: string; stale: boolean; state: string; reason?: string }>;
  health: 'ok' | 'degraded' | 'down';
  problems: string[];
  /** camelCase (probeSyn, rbLost), numbers. */
  counters: Record<string, number>;
  bansInForce: number;
  watch: { tcp: number[]; udp: number[]; skipped: unknown[] } | null;
}

/** Labs (of any kind) still standing: torn down on process exit and on SIGINT/SIGTERM/SIGHUP. */
const live = new Set<{ teardownSync(): void }>();
let counter = 0;
let hooked = false;
let swept = false;

/** Ties a lab's synchronous teardown to this process's exit and signals; returns the untie. */
export function tieToProcess(lab: { teardownSync(): void }): () => void {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const l of [...live]) l.teardownSync();
    });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        for (const l of [...live]) l.teardownSync();
        process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
      });
    }
  }
  live.add(lab);
  return () => live.delete(lab);
}

/** nmap's XML (-oX -): every scanned port's state, including those folded into <extraports>. */
export function parseNmap(r: RunResult): NmapResult {
  const states = new Map<string, number>();
  const listed: NmapResult['listed'] = [];
  for (const m of r.stdout.matchAll(/<port protocol="(\w+)" portid="(\d+)"><state state="([^"]+)"/g)) {
    listed.push({ proto: m[1]!, port: Number(m[2]), state: m[3]! });
    states.set(m[3]!, (states.get(m[3]!) ?? 0) + 1);
  }
  for (const m of r.stdout.matchAll(/<extraports state="([^"]+)" count="(\d+)"/g)) {
    states.set(m[1]!, (states.get(m[1]!) ?? 0) + Number(m[2]));
  }
  const total = [...states.values()].reduce((a, b) => a + b, 0);
  return { run: r, states, listed, total };
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes what labs of earlier, dead test processes left behind (after a SIGKILL, say). */
function sweepDeadLabs(): void {
  if (swept) return;
  swept = true;
  const ns = runSync(['ip', 'netns', 'list']).stdout;
  for (const line of ns.split('\n')) {
    const m = /^(sx(?:gw|atk)-(\d+)-\d+)\b/.exec(line);
    if (m && !pidAlive(Number(m[2]))) runSync(['ip', 'netns', 'del', m[1]!]);
  }
  for (const dir of existsSync('/sys/fs/bpf') ? readdirSync('/sys/fs/bpf') : []) {
    const m = /^sentry-xdp-test-(\d+)-\d+$/.exec(dir);
    if (m && !pidAlive(Number(m[1]))) {
      runSync([BIN, 'detach', '--all'], { SENTRY_XDP_PIN_ROOT: `/sys/fs/bpf/${dir}`, SENTRY_XDP_RUN_DIR: `/tmp/${dir}` });
      rmSync(`/sys/fs/bpf/${dir}`, { recursive: true, force: true });
      rmSync(`/tmp/${dir}`, { recursive: true, force: true });
      rmSync(`/tmp/${dir}-conf`, { recursive: true, force: true });
      rmSync(`/tmp/${dir}-state`, { recursive: true, force: true });
    }
  }
}

/**
 * The gateway side every lab has: its namespace, the CLI's own pin root, run,
 * config and state directories, and the verbs run there.
 */
export abstract class GatewaySide {
  readonly pinRoot: string;
  readonly runDir: string;
  readonly confDir: string;
  readonly stateDir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly daemons: Daemon[] = [];
  untie: () => void = () => {};
  protected torn = false;

  /** The synchronous part of teardown (also used from process 'exit' and signal handlers). */
  abstract teardownSync(): void;

  /** The interface `startDaemon` attaches to when none is named. */
  protected abstract get daemonIface(): string;

  /** Starts `sentry-xdp attach IFACE...` in the background in the gateway namespace. */
  async startDaemon(o: DaemonOptions = {}): Promise<Daemon> {
    const args = ['attach', ...(o.ifaces ?? [this.daemonIface]), ...(o.config ? ['--config', o.config] : []), ...(o.json ? ['--json'] : []), ...(o.args ?? [])];
    const argv = ['nsenter', `--net=/run/netns/${this.gwNs}`, '--', BIN, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, PATH, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const d = new Daemon(child, `sentry-xdp ${args.join(' ')}`);
    this.daemons.push(d);
    if (o.waitReady !== false) {
      const ready = o.json ? /"event":"info".*PortSentry-compatible alerts follow/ : /^sentry-xdp: PortSentry-compatible alerts follow/;
      await d.waitForLine(ready, o.readyTimeoutMs ?? 20_000);
    }
    return d;
  }

  /**
   * `detach --all` from inside the gateway namespace while it still exists, then
   * deleting the pins as a fall-back; returns what went wrong.
   */
  protected detachAllSync(): string[] {
    const problems: string[] = [];
    const nsArgs = existsSync(`/run/netns/${this.gwNs}`) ? ['nsenter', `--net=/run/netns/${this.gwNs}`, '--'] : [];
    for (let i = 0; i < 3; i++) {
      const r = runSync([...nsArgs, BIN, 'detach', '--all'], this.env);
      if (r.code === 0 || !existsSync(this.pinRoot)) break;
      if (i === 2) problems.push(describeRun(r));
      sleepSync(300); // a daemon that was just SIGKILLed may still be on its way out
    }
    if (existsSync(this.pinRoot)) rmSync(this.pinRoot, { recursive: true, force: true });
    return problems;
  }

  /**
   * The end of every teardown: our pins, then the lab's namespaces (`beforeDel`
   * runs on each first), then its directories; what went wrong goes to stderr.
   */
  protected removeAllSync(namespaces: string[], what: string, beforeDel: (ns: string) => void = () => {}): void {
    const problems = this.detachAllSync();
    for (const ns of namespaces) {
      beforeDel(ns);
      if (existsSync(`/run/netns/${ns}`)) {
        const r = runSync(['ip', 'netns', 'del', ns]);
        if (r.code !== 0) problems.push(describeRun(r));
      }
    }
    for (const d of [this.runDir, this.confDir, this.stateDir]) rmSync(d, { recursive: true, force: true });
    if (problems.length) process.stderr.write(`${what} ${this.id} teardown: ${problems.join('\n')}\n`);
  }

  /** Stops the daemons, then removes everything the lab made. Idempotent. */
  async teardown(): Promise<void> {
    if (this.torn) return;
    await Promise.all(this.daemons.map((d) => d.stop(3000)));
    this.teardownSync();
  }

  /** `dirs` names the directories: /sys/fs/bpf/DIRS, /tmp/DIRS, /tmp/DIRS-conf, /tmp/DIRS-state. */
  constructor(
    readonly id: string,
    readonly gwNs: string,
    dirs: string,
  ) {
    this.pinRoot = `/sys/fs/bpf/${dirs}`;
    this.runDir = `/tmp/${dirs}`;
    this.confDir = `/tmp/${dirs}-conf`;
    this.stateDir = `/tmp/${dirs}-state`;
    this.env = {
      SENTRY_XDP_PIN_ROOT: this.pinRoot,
      SENTRY_XDP_RUN_DIR: this.runDir,
      SENTRY_XDP_STATE_DIR: this.stateDir,
      SENTRY_XDP_CONFIG: undefined,
    };
  }

  /** A command in the gateway namespace (network namespace only: bpffs pins stay visible). */
  gw(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(['nsenter', `--net=/run/netns/${this.gwNs}`, '--', ...argv], { ...opts, env: { ...this.env, ...opts.env } });
  }

  /** The sentry-xdp CLI in the gateway namespace with this lab's pin root, run and state dirs. */
  cli(args: string[], opts: RunOptions = {}): Promise<RunResult> {
    return this.gw([BIN, ...args], { timeoutMs: 30_000, ...opts });
  }

  /** Writes a config file (YAML text) into this lab's scratch directory; returns its path. */
  writeConfig(name: string, text: string): string {
    mkdirSync(this.confDir, { recursive: true });
    const p = join(this.confDir, name);
    writeFileSync(p, text);
    return p;
  }

  /** What a reboot leaves: no pins (the XDP links go with them) and no nft table of ours. Stop the daemon first. */
  async reboot(): Promise<void> {
    const wipe = (dir: string) => {
      for (const f of readdirSync(dir, { withFileTypes: true })) {
        if (f.isDirectory()) {
          wipe(join(dir, f.name));
          rmSync(join(dir, f.name), { recursive: true, force: true });
        } else unlinkSync(join(dir, f.name));
      }
    };
    wipe(this.pinRoot);
    const r = await this.gw(['nft', 'delete', 'table', 'inet', 'sentry_xdp']);
    if (r.code !== 0) throw new Error(`cannot delete the nft table: ${describeRun(r)}`);
  }

  /** `sentry-xdp status --json`, parsed (exit 1 degraded, 3 nothing loaded or no daemon: still JSON, and the code matches `health`). */
  async status(): Promise<StatusJson> {
    const r = await this.cli(['status', '--json']);
    if (r.code !== 0 && r.code !== 1 && r.code !== 3) throw new Error(`status --json failed: ${describeRun(r)}`);
    let s: StatusJson;
    try {
      s = JSON.parse(r.stdout) as StatusJson;
    } catch (e) {
      throw new Error(`status --json printed no JSON (${(e as Error).message}): ${describeRun(r)}`);
    }
    const want = { ok: 0, degraded: 1, down: 3 }[s.health];
    if (r.code !== want) throw new Error(`status says ${s.health} (${s.problems.join('; ')}) but exited ${r.code}, not ${want}: ${describeRun(r)}`);
    return s;
  }
}

export class Lab extends GatewaySide {
  readonly atkNs: string;
  readonly gwIf: string;
  readonly atkIf: string;

  constructor() {
    const n = counter++;
    const id = `${process.pid}-${n}`;
    super(id, `sxgw-${id}`, `sentry-xdp-test-${id}`);
    this.atkNs = `sxatk-${id}`;
    this.gwIf = `sxg${process.pid}n${n}`; // at most 15 characters
    this.atkIf = `sxa${process.pid}n${n}`;
  }

  /** Builds the namespaces and the veth pair; throws with the failing command's output. */
  setup(): void {
    const steps: string[][] = [
      ['ip', 'netns', 'add', this.gwNs],
      ['ip', 'netns', 'add', this.atkNs],
      ['ip', 'link', 'add', this.gwIf, 'netns', this.gwNs, 'type', 'veth', 'peer', 'name', this.atkIf, 'netns', this.atkNs],
      ['ip', '-n', this.gwNs, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', this.atkNs, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', this.gwNs, 'addr', 'add', `${GW4}/24`, 'dev', this.gwIf],
      ['ip', '-n', this.gwNs, 'addr', 'add', `${GW6}/64`, 'dev', this.gwIf, 'nodad'],
      ['ip', '-n', this.atkNs, 'addr', 'add', `${ATK4}/24`, 'dev', this.atkIf],
      ['ip', '-n', this.atkNs, 'addr', 'add', `${ATK6}/64`, 'dev', this.atkIf, 'nodad'],
      ['ip', '-n', this.gwNs, 'link', 'set', this.gwIf, 'up'],
      ['ip', '-n', this.atkNs, 'link', 'set', this.atkIf, 'up'],
    ];
    for (const s of steps) {
      const r = runSync(s);
      if (r.code !== 0) throw new Error(`lab setup failed: ${describeRun(r)}`);
    }
    mkdirSync(this.confDir, { recursive: true });
  }

  /** A command in the attacker namespace. */
  atk(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.atkNs, ...argv], opts);
  }

  /** One SYN from `src` (an address the attacker namespace owns, or a spoofed one) to a watched port of the gateway. */
  async probe(src: string, port = 1): Promise<void> {
    const r = await this.atk(['hping3', '-c', '1', '-S', '-p', String(port), '-a', src, GW4], { timeoutMs: 10_000 });
    if (r.timedOut) throw new Error(`hping3 hung: ${describeRun(r)}`);
  }

  protected get daemonIface(): string {
    return this.gwIf;
  }

  /** Pings until one gets through (a few tries: neighbour entries may need a moment after a ban). */
  async pingGetsThrough(v6: boolean, tries = 3): Promise<{ ok: boolean; log: string }> {
    let log = '';
    for (let i = 0; i < tries; i++) {
      const p = await this.ping(v6);
      log += describeRun(p.run);
      if (p.ok) return { ok: true, log };
    }
    return { ok: false, log };
  }

  /** One ping from the attacker to the gateway: true when it got an answer. */
  async ping(v6 = false): Promise<{ ok: boolean; run: RunResult }> {
    const r = await this.atk(['ping', ...(v6 ? ['-6'] : ['-4']), '-n', '-c1', '-W1', v6 ? GW6 : GW4], { timeoutMs: 10_000 });
    return { ok: r.code === 0, run: r };
  }

  /** nmap from the attacker namespace against the gateway, small and fast, with every port's state. */
  async nmap(scan: string[], ports: string, v6 = false): Promise<NmapResult> {
    const argv = nmapArgv(scan, ports, [v6 ? GW6 : GW4]);
    return parseNmap(await this.atk(argv, { timeoutMs: 60_000 }));
  }

  /** The synchronous part of teardown (also used from process 'exit' and signal handlers). */
  teardownSync(): void {
    if (this.torn) return;
    this.torn = true;
    this.untie();
    for (const d of this.daemons) if (!d.exited) d.child.kill('SIGKILL');
    this.removeAllSync([this.gwNs, this.atkNs], 'lab');
  }
}

/**
 * A fresh lab. Pass the test context to tie teardown to the test (`t.after`);
 * without one it is tied to the enclosing suite (`after`). Teardown also runs
 * on process exit and on SIGINT/SIGTERM.
 */
export function createLab(t?: { after(fn: () => unknown): void }): Lab {
  requireTools('ip', 'nsenter');
  if (process.getuid?.() !== 0) throw new Error('the end-to-end tests need root (network namespaces, BPF, XDP)');
  if (!existsSync(join(REPO, 'dist', 'src', 'cli', 'main.js'))) throw new Error(`sentry-xdp is not built; run \`make build\` in ${REPO}`);
  sweepDeadLabs();
  const l = new Lab();
  l.untie = tieToProcess(l);
  if (t) t.after(() => l.teardown());
  else suiteAfter(() => l.teardown());
  try {
    l.setup();
  } catch (e) {
    l.teardownSync();
    throw e;
  }
  return l;
}
