/**
 * The routed gateway lab: three network namespaces, a gateway between an
 * outside network and a server LAN (DESIGN.md, "Test lab rules").
 *
 *   outside ns sxo-<pid>-<n>            gateway ns sxr-<pid>-<n>                 LAN ns sxl-<pid>-<n>
 *   veth sxo<pid>n<n>  ◄──────────►  sxgo<pid>n<n> | sxgl<pid>n<n>  ◄──────────►  veth sxl<pid>n<n>
 *   198.18.0.2   scanner             198.18.0.1/24    198.19.0.1/24              198.19.0.10  server (TCP 143, 445; UDP 161)
 *   198.18.0.53  resolver (UDP 53)   2001:db8::1/64   2001:db8:1::1/64           198.19.0.53  DNS server (UDP 53)
 *   198.18.0.100 client              forwarding on, optionally masquerading      198.19.0.20  client
 *   2001:db8::2                      what leaves by the outside interface        198.19.0.99  held, nothing listens
 *                                                                                2001:db8:1::10 IMAP (TCP 143)
 *
 * No default route anywhere: the outside knows 198.19.0.0/24 and 2001:db8:1::/64
 * via the gateway, the LAN knows 198.18.0.0/24 and 2001:db8::/64 via the
 * gateway, and nothing can leave the three. Services and clients are the
 * Python scripts of test/fixtures/lab/ (standard library only), run as
 * background children and killed at teardown.
 *
 * The gateway side runs under `nsenter --net` (network namespace only) because
 * `ip netns exec` remounts /sys and would hide the bpffs pins. Each lab has its
 * own pin root, run and state directory, and tears everything down on
 * `t.after`, on process exit and on SIGINT/SIGTERM; labs left by a test process
 * that died (SIGKILL) are swept when the next one is made. Nothing here sends
 * traffic from the root namespace.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import {
  BIN,
  describeRun,
  GatewaySide,
  REPO,
  requireTools,
  run,
  type NmapResult,
  type RunOptions,
  type RunResult,
  nmapArgv,
  parseNmap,
  PATH,
  pidAlive,
  runSync,
  sleepSync,
  tieToProcess,
  whichTool,
} from './lab.js';

/** Addresses of the outside network. */
export const OUTSIDE = {
  gw: '198.18.0.1',
  scanner: '198.18.0.2',
  resolver: '198.18.0.53',
  client: '198.18.0.100',
  gw6: '2001:db8::1',
  scanner6: '2001:db8::2',
  net4: '198.18.0.0/24',
  net6: '2001:db8::/64',
} as const;

/** The watched ports and the protect section the gateway tests use: the LAN protected, its services listed. */
export const LAB_PORTS_YAML = ['tcp_ports: "1,11,143,445"', 'udp_ports: "161,32770-32774"', 'ban_ttl: 10m'];
export const labProtectYaml = (): string[] => [
  'protect:',
  `  networks: ["${LAN.net4}", "${LAN.net6}"]`,
  '  services:',
  `    - "${LAN.server}:143/tcp"`,
  `    - "${LAN.server}:445/tcp"`,
  `    - "${LAN.server}:161/udp"`,
  `    - "${LAN.server6}:143/tcp"`,
  `    - "${LAN.dns}:53/udp"`,
];

/** Addresses of the server LAN behind the gateway. */
export const LAN = {
  gw: '198.19.0.1',
  server: '198.19.0.10',
  dns: '198.19.0.53',
  client: '198.19.0.20',
  unused: '198.19.0.99', // held by the LAN namespace, nothing listens there
  gw6: '2001:db8:1::1',
  server6: '2001:db8:1::10',
  net4: '198.19.0.0/24',
  net6: '2001:db8:1::/64',
} as const;

export const FIXTURES = join(REPO, 'test', 'fixtures', 'lab');

/** The system's python3 (a pyenv shim would start a shell per call). */
function python(): string {
  if (existsSync('/usr/bin/python3')) return '/usr/bin/python3';
  const p = whichTool('python3');
  if (!p) throw new Error('required tool missing: python3 (the lab services and clients are Python 3 scripts)');
  return p;
}

/** What client.py prints. */
interface ClientSummary {
  proto: 'tcp' | 'udp';
  dst: string;
  port: number;
  src: string | null;
  sent: number;
  answered: number;
  failed: number;
  errors: Record<string, number>;
  source_ports: number;
  /** Distinct source addresses bound (with src or srcRange). */
  source_addresses: number;
  elapsed_ms: number;
}

export interface ClientResult {
  summary: ClientSummary;
  run: RunResult;
}

export interface ClientOptions {
  proto: 'tcp' | 'udp';
  dst: string;
  port: number;
  count: number;
  src?: string;
  /** "FIRST-LAST": source addresses, cycled, one per exchange (many clients from one process). */
  srcRange?: string;
  /** UDP without dns: pad each datagram to this many bytes (a large one is fragmented). */
  size?: number;
  /** "LO-HI": source ports, cycled (SO_REUSEADDR). */
  sportRange?: string;
  dns?: boolean;
  timeoutS?: number;
  intervalMs?: number;
  /** Stop after this many failures in a row (default 10; 0 = never). */
  giveUpAfter?: number;
}

/** A background child of the lab (a Python service), with its output. */
export interface LabChild {
  name: string;
  child: ChildProcess;
  output(): string;
}

export interface GatewayLabOptions {
  /** Masquerade what leaves by the gateway's outside interface (nft table `ip sxnat`). */
  masquerade?: boolean;
  /** Start the standard services (echo server, resolvers); default true. */
  services?: boolean;
}

const NS_RE = /^(sx[orl])-(\d+)-(\d+)$/;
const DIR_RE = /^sentry-xdp-gwlab-(\d+)-\d+$/;
let counter = 0;
let swept = false;

/** Kills what still runs in a namespace (our services, a daemon), by pid. */
function killNsPids(ns: string): void {
  if (!existsSync(`/run/netns/${ns}`)) return;
  const pids = runSync(['ip', 'netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    if (pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/** Removes what gateway labs of earlier, dead test processes left behind (after a SIGKILL, say). */
function sweepDeadLabs(): void {
  if (swept) return;
  swept = true;
  const names = runSync(['ip', 'netns', 'list'])
    .stdout.split('\n')
    .map((l) => l.split(/\s/)[0] ?? '')
    .filter((n) => {
      const m = NS_RE.exec(n);
      return m && !pidAlive(Number(m[2]));
    });
  for (const ns of names) killNsPids(ns);
  for (const dir of existsSync('/sys/fs/bpf') ? readdirSync('/sys/fs/bpf') : []) {
    const m = DIR_RE.exec(dir);
    if (!m || pidAlive(Number(m[1]))) continue;
    const gwNs = dir.replace(/^sentry-xdp-gwlab-/, 'sxr-');
    const nsArgs = existsSync(`/run/netns/${gwNs}`) ? ['nsenter', `--net=/run/netns/${gwNs}`, '--'] : [];
    runSync([...nsArgs, BIN, 'detach', '--all'], { SENTRY_XDP_PIN_ROOT: `/sys/fs/bpf/${dir}`, SENTRY_XDP_RUN_DIR: `/tmp/${dir}` });
    rmSync(`/sys/fs/bpf/${dir}`, { recursive: true, force: true });
  }
  for (const ns of names) runSync(['ip', 'netns', 'del', ns]);
  for (const dir of readdirSync('/tmp')) {
    const m = /^sentry-xdp-gwlab-(\d+)-\d+(?:-conf|-state)?$/.exec(dir);
    if (m && !pidAlive(Number(m[1]))) rmSync(`/tmp/${dir}`, { recursive: true, force: true });
  }
}

export class GatewayLab extends GatewaySide {
  readonly outNs: string;
  readonly lanNs: string;
  /** The outside namespace's interface. */
  readonly outIf: string;
  /** The gateway's outside interface (the one sentry-xdp watches by default). */
  readonly gwOutIf: string;
  /** The gateway's LAN interface. */
  readonly gwLanIf: string;
  /** The LAN namespace's interface. */
  readonly lanIf: string;
  readonly children: LabChild[] = [];

  constructor(readonly masquerade: boolean) {
    const n = counter++;
    const id = `${process.pid}-${n}`;
    super(id, `sxr-${id}`, `sentry-xdp-gwlab-${id}`);
    this.outNs = `sxo-${id}`;
    this.lanNs = `sxl-${id}`;
    // at most 15 characters: 4 + 7 (pid_max 4194304) + 1 + up to 3
    this.outIf = `sxo${process.pid}n${n}`;
    this.gwOutIf = `sxgo${process.pid}n${n}`;
    this.gwLanIf = `sxgl${process.pid}n${n}`;
    this.lanIf = `sxl${process.pid}n${n}`;
  }

  /** Builds the namespaces, links, addresses, routes, forwarding and NAT; throws with the failing command's output. */
  setup(): void {
    const { outNs: o, gwNs: g, lanNs: l } = this;
    const steps: string[][] = [
      ['ip', 'netns', 'add', o],
      ['ip', 'netns', 'add', g],
      ['ip', 'netns', 'add', l],
      // no duplicate address detection on the links made below: a tentative link-local
      // address delays neighbour discovery, and the first IPv6 packets through the gateway with it
      ...[o, g, l].flatMap((ns) => [
        ['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.accept_dad=0'],
        ['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.accept_dad=0'],
      ]),
      ['ip', 'link', 'add', this.outIf, 'netns', o, 'type', 'veth', 'peer', 'name', this.gwOutIf, 'netns', g],
      ['ip', 'link', 'add', this.gwLanIf, 'netns', g, 'type', 'veth', 'peer', 'name', this.lanIf, 'netns', l],
      ...[o, g, l].map((ns) => ['ip', '-n', ns, 'link', 'set', 'lo', 'up']),
      // outside: the scanner's address first (the primary, what nmap and the kernel pick)
      ['ip', '-n', o, 'addr', 'add', `${OUTSIDE.scanner}/24`, 'dev', this.outIf],
      ['ip', '-n', o, 'addr', 'add', `${OUTSIDE.resolver}/24`, 'dev', this.outIf],
      ['ip', '-n', o, 'addr', 'add', `${OUTSIDE.client}/24`, 'dev', this.outIf],
      ['ip', '-n', o, 'addr', 'add', `${OUTSIDE.scanner6}/64`, 'dev', this.outIf, 'nodad'],
      // gateway
      ['ip', '-n', g, 'addr', 'add', `${OUTSIDE.gw}/24`, 'dev', this.gwOutIf],
      ['ip', '-n', g, 'addr', 'add', `${OUTSIDE.gw6}/64`, 'dev', this.gwOutIf, 'nodad'],
      ['ip', '-n', g, 'addr', 'add', `${LAN.gw}/24`, 'dev', this.gwLanIf],
      ['ip', '-n', g, 'addr', 'add', `${LAN.gw6}/64`, 'dev', this.gwLanIf, 'nodad'],
      // LAN
      ['ip', '-n', l, 'addr', 'add', `${LAN.server}/24`, 'dev', this.lanIf],
      ['ip', '-n', l, 'addr', 'add', `${LAN.dns}/24`, 'dev', this.lanIf],
      ['ip', '-n', l, 'addr', 'add', `${LAN.client}/24`, 'dev', this.lanIf],
      ['ip', '-n', l, 'addr', 'add', `${LAN.unused}/24`, 'dev', this.lanIf],
      ['ip', '-n', l, 'addr', 'add', `${LAN.server6}/64`, 'dev', this.lanIf, 'nodad'],
      // forwarding (per namespace: /proc/sys/net belongs to the namespace)
      ['ip', 'netns', 'exec', g, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'],
      ['ip', 'netns', 'exec', g, 'sysctl', '-q', '-w', 'net.ipv6.conf.all.forwarding=1'],
      ...[
        [o, this.outIf],
        [g, this.gwOutIf],
        [g, this.gwLanIf],
        [l, this.lanIf],
      ].map(([ns, dev]) => ['ip', '-n', ns!, 'link', 'set', dev!, 'up']),
      // routes; no default route anywhere
      ['ip', '-n', o, 'route', 'add', LAN.net4, 'via', OUTSIDE.gw],
      ['ip', '-n', o, '-6', 'route', 'add', LAN.net6, 'via', OUTSIDE.gw6],
      ['ip', '-n', l, 'route', 'add', OUTSIDE.net4, 'via', LAN.gw],
      ['ip', '-n', l, '-6', 'route', 'add', OUTSIDE.net6, 'via', LAN.gw6],
    ];
    for (const s of steps) {
      const r = runSync(s);
      if (r.code !== 0) throw new Error(`gateway lab setup failed: ${describeRun(r)}`);
    }
    this.waitLinksUp();
    if (this.masquerade) {
      const rules = [
        'table ip sxnat {',
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    oifname "${this.gwOutIf}" masquerade`,
        '  }',
        '}',
        '',
      ].join('\n');
      const file = join(this.confDir, 'sxnat.nft');
      mkdirSync(this.confDir, { recursive: true });
      writeFileSync(file, rules);
      const r = runSync(['nsenter', `--net=/run/netns/${g}`, '--', 'nft', '-f', file]);
      if (r.code !== 0) throw new Error(`gateway lab setup failed (masquerade): ${describeRun(r)}`);
    }
    mkdirSync(this.confDir, { recursive: true });
  }

  /**
   * Waits until every link has its carrier (veth carrier comes through the kernel's
   * link watch, up to a second late) and an IPv6 link-local address that is not
   * tentative: until then the first packets through the gateway wait on neighbour
   * discovery, and TCP retransmits its SYN a second later.
   */
  private waitLinksUp(timeoutMs = 5000): void {
    const links: Array<[string, string]> = [
      [this.outNs, this.outIf],
      [this.gwNs, this.gwOutIf],
      [this.gwNs, this.gwLanIf],
      [this.lanNs, this.lanIf],
    ];
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const pending = links.filter(([ns, dev]) => {
        const link = runSync(['ip', '-n', ns, '-o', 'link', 'show', 'dev', dev]).stdout;
        const ll = runSync(['ip', '-n', ns, '-o', '-6', 'addr', 'show', 'dev', dev, 'scope', 'link']).stdout;
        last = `${last}${link}${ll}`;
        return link.includes('NO-CARRIER') || !/state UP/.test(link) || !ll.includes('fe80') || /tentative/.test(ll);
      });
      if (!pending.length) return;
      if (Date.now() > deadline) throw new Error(`gateway lab setup: links not up within ${timeoutMs} ms: ${pending.map((p) => p[1]).join(', ')}\n${last}`);
      last = '';
      sleepSync(50);
    }
  }

  /** Runs `ip -n NS -batch FILE` with these lines; throws with the output when it fails. */
  private async ipBatch(ns: string, lines: string[]): Promise<void> {
    const file = join(this.confDir, `ip-batch-${ns}-${Date.now()}`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const r = await run(['ip', '-n', ns, '-batch', file], { timeoutMs: 30_000 });
    rmSync(file, { force: true });
    if (r.code !== 0) throw new Error(`gateway lab: ip -batch failed: ${describeRun(r)}`);
  }

  /** More LAN hosts: IPv4 addresses of LAN.net4 held by the LAN namespace. */
  async addLanHosts(addrs: readonly string[]): Promise<void> {
    await this.ipBatch(
      this.lanNs,
      addrs.map((a) => `addr add ${a}/24 dev ${this.lanIf}`),
    );
  }

  /**
   * More outside clients: `addrs` (IPv4, /32 each, inside `net`, which must lie
   * outside OUTSIDE.net4 and LAN.net4) held by the outside namespace; the
   * gateway routes `net` via the outside namespace (one neighbour entry, not
   * one per client) and the LAN via the gateway.
   */
  async addOutsideClients(net: string, addrs: readonly string[]): Promise<void> {
    await this.ipBatch(
      this.outNs,
      addrs.map((a) => `addr add ${a}/32 dev ${this.outIf}`),
    );
    await this.ipBatch(this.gwNs, [`route add ${net} via ${OUTSIDE.client} dev ${this.gwOutIf}`]);
    await this.ipBatch(this.lanNs, [`route add ${net} via ${LAN.gw} dev ${this.lanIf}`]);
  }

  /** A command in the outside namespace (scanner, clients, upstream resolver). */
  outside(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.outNs, ...argv], opts);
  }

  /** A command in the LAN namespace. */
  lan(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.lanNs, ...argv], opts);
  }

  private nsRun(ns: 'outside' | 'lan' | 'gw', argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    return ns === 'outside' ? this.outside(argv, opts) : ns === 'lan' ? this.lan(argv, opts) : this.gw(argv, opts);
  }

  /** `sentry-xdp list --json`, parsed (the bans in force). */
  async bans(args: string[] = []): Promise<{ list: Array<{ target: string } & Record<string, unknown>>; run: RunResult }> {
    const r = await this.cli(['list', '--json', ...args]);
    if (r.code !== 0) throw new Error(`list --json failed: ${describeRun(r)}`);
    try {
      return { list: (JSON.parse(r.stdout) as { bans: Array<{ target: string }> }).bans, run: r };
    } catch (e) {
      throw new Error(`list --json printed no JSON (${(e as Error).message}): ${describeRun(r)}`);
    }
  }

  protected get daemonIface(): string {
    return this.gwOutIf;
  }

  /**
   * Starts a Python script of test/fixtures/lab/ in the background in a
   * namespace and waits for its `ready` line; killed at teardown.
   */
  async startScript(ns: 'outside' | 'lan' | 'gw', script: string, args: string[], timeoutMs = 10_000): Promise<LabChild> {
    const enter = ns === 'gw' ? ['nsenter', `--net=/run/netns/${this.gwNs}`, '--'] : ['ip', 'netns', 'exec', ns === 'outside' ? this.outNs : this.lanNs];
    const argv = [...enter, python(), '-u', join(FIXTURES, script), ...args];
    // its own process group, so teardown can kill it whatever it started
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, PATH }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const name = `${script} ${args.join(' ')} (${ns})`;
    let out = '';
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const c: LabChild = { name, child, output: () => `${name}\n--- stdout ---\n${out}--- stderr ---\n${err}` };
    this.children.push(c);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "ready" from ${name} within ${timeoutMs} ms\n${c.output()}`)), timeoutMs);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        out += `${line}\n`;
        if (line.startsWith('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on('close', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`${name} exited (code ${code}, signal ${sig}) before it was ready\n${c.output()}`));
      });
    });
    return c;
  }

  /** The lab's standard services: the LAN server's listeners, the LAN DNS server, the upstream resolver. */
  async startServices(): Promise<void> {
    await Promise.all([
      this.startScript('lan', 'echo_server.py', ['--addr', LAN.server, '--tcp', '143,445', '--udp', '161']),
      this.startScript('lan', 'echo_server.py', ['--addr', LAN.server6, '--tcp', '143']),
      this.startScript('lan', 'resolver.py', ['--addr', LAN.dns, '--port', '53']),
      this.startScript('outside', 'resolver.py', ['--addr', OUTSIDE.resolver, '--port', '53']),
    ]);
  }

  private clientArgv(c: ClientOptions): string[] {
    return [
      python(),
      join(FIXTURES, 'client.py'),
      '--proto',
      c.proto,
      '--dst',
      c.dst,
      '--port',
      String(c.port),
      '--count',
      String(c.count),
      ...(c.src ? ['--src', c.src] : []),
      ...(c.srcRange ? ['--src-range', c.srcRange] : []),
      ...(c.size ? ['--size', String(c.size)] : []),
      ...(c.sportRange ? ['--sport-range', c.sportRange] : []),
      ...(c.dns ? ['--dns'] : []),
      ...(c.timeoutS !== undefined ? ['--timeout', String(c.timeoutS)] : []),
      ...(c.intervalMs !== undefined ? ['--interval-ms', String(c.intervalMs)] : []),
      '--give-up-after',
      String(c.giveUpAfter ?? 10),
    ];
  }

  /** Runs client.py in a namespace; resolves with its JSON summary (throws when it printed none). */
  async client(ns: 'outside' | 'lan', c: ClientOptions, timeoutMs = 120_000): Promise<ClientResult> {
    const r = await this.nsRun(ns, this.clientArgv(c), { timeoutMs });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return { summary: JSON.parse(last) as ClientSummary, run: r };
    } catch {
      throw new Error(`client.py printed no summary: ${describeRun(r)}`);
    }
  }

  /**
   * nmap from the outside namespace, small and fast, with every port's state.
   * `src` other than the scanner's (primary) address is set with -S/-e.
   * `target` may be a list of addresses (one family).
   */
  async nmap(src: string, scan: string[], ports: string, target: string | string[]): Promise<NmapResult> {
    const targets = typeof target === 'string' ? [target] : target;
    const v6 = targets[0]!.includes(':');
    const primary = v6 ? OUTSIDE.scanner6 : OUTSIDE.scanner;
    const argv = nmapArgv(scan, ports, targets, src !== primary ? ['-S', src, '-e', this.outIf] : []);
    return parseNmap(await this.outside(argv, { timeoutMs: 60_000 }));
  }

  /** The lab's services: which still run, and what those that stopped said (for assertion messages). */
  servicesReport(): string {
    return this.children
      .map((c) => {
        const done = c.child.exitCode !== null || c.child.signalCode !== null;
        return done ? `service stopped (code ${c.child.exitCode}, signal ${c.child.signalCode}): ${c.output()}` : `service running: ${c.name}`;
      })
      .join('\n');
  }

  /** The gateway's conntrack table (`conntrack -L`), for assertion messages. */
  async conntrack(): Promise<string> {
    const r = await this.gw(['conntrack', '-L'], { timeoutMs: 10_000 });
    return `--- conntrack -L (gateway) ---\n${r.stdout}${r.stderr}`;
  }

  /** The synchronous part of teardown (also used from process 'exit' and signal handlers). */
  teardownSync(): void {
    if (this.torn) return;
    this.torn = true;
    this.untie();
    for (const d of this.daemons) if (!d.exited) d.child.kill('SIGKILL');
    for (const c of this.children) {
      if (c.child.exitCode !== null || c.child.signalCode !== null || !c.child.pid) continue;
      try {
        process.kill(-c.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.removeAllSync([this.outNs, this.gwNs, this.lanNs], 'gateway lab', killNsPids); // whatever was started there and still runs
  }
}

/**
 * A fresh routed gateway lab with its services running. Teardown is tied to
 * the test (`t.after`), to process exit and to SIGINT/SIGTERM.
 */
export async function createGatewayLab(t: { after(fn: () => unknown): void }, opts: GatewayLabOptions = {}): Promise<GatewayLab> {
  requireTools('ip', 'nsenter', 'nft');
  python();
  if (process.getuid?.() !== 0) throw new Error('the end-to-end tests need root (network namespaces, BPF, XDP)');
  if (!existsSync(join(REPO, 'dist', 'src', 'cli', 'main.js'))) throw new Error(`sentry-xdp is not built; run \`make build\` in ${REPO}`);
  sweepDeadLabs();
  const l = new GatewayLab(Boolean(opts.masquerade));
  l.untie = tieToProcess(l);
  t.after(() => l.teardown());
  try {
    l.setup();
    if (opts.services !== false) await l.startServices();
  } catch (e) {
    await l.teardown();
    throw e;
  }
  return l;
}
