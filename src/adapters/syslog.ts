/**
 * Writes log lines to the local syslog socket exactly as glibc's syslog(3) does, so rsyslog, syslog-ng
 * and journald file them like PortSentry's own lines:
 *
 *   <29>Oct 14 19:24:32 sentry-xdp[25360]: attackalert: TCP SYN/Normal scan from host: ...
 *
 * (RFC 3164 as written to /dev/log: PRI, local time "Mmm dd hh:mm:ss", TAG[PID]: message; no hostname,
 * the syslog daemon adds it.)
 *
 * Facility and tag. PortSentry 1.x logs with openlog("portsentry", LOG_PID, SYSLOG_FACILITY) and
 * syslog(SYSLOG_LEVEL, ...), where portsentry_config.h sets SYSLOG_FACILITY LOG_DAEMON and SYSLOG_LEVEL
 * LOG_NOTICE ("The default syslog is as daemon.notice"). So the default facility here is daemon and alerts
 * go out as notice. The default tag is "sentry-xdp"; logcheck and fail2ban filters written for PortSentry
 * match the program name "portsentry", so `tag: portsentry` keeps them matching unchanged.
 *
 * Transport. /dev/log is an AF_UNIX SOCK_DGRAM socket, and node:dgram only does UDP. Rather than spawning
 * logger(1) (a process per line, or a long-lived child to babysit), this calls libc socket/connect/send
 * through koffi, which the daemon already loads for libbpf. Each line is one non-blocking send() of a few
 * hundred bytes: it never blocks the event loop. Like glibc it reconnects when the syslog daemon restarts
 * (ECONNREFUSED), and falls back to SOCK_STREAM (through node:net, frames ended by NUL as glibc does) when
 * the socket is a stream socket (EPROTOTYPE). When the receiver is full (EAGAIN) or gone, lines wait in a
 * bounded queue and are retried on a timer; past the bound they are dropped and the count reported.
 * `log` never throws; a missing socket is reported once (again after it has worked in between).
 */
import { createConnection, type Socket } from 'node:net';
import koffi from 'koffi';
import { oneLine, printable } from '../core/text.js';
import { FACILITIES } from '../core/config.js';
import { SentryError } from '../errors.js';

export type SyslogSeverity = 'emerg' | 'alert' | 'crit' | 'err' | 'warning' | 'notice' | 'info' | 'debug';

const SEVERITIES: Readonly<Record<SyslogSeverity, number>> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  err: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

export interface SyslogOptions {
  /** Default /dev/log. */
  path?: string;
  /** daemon (default, as PortSentry), user, auth, authpriv, local0..local7, ... */
  facility?: string;
  /** Program name in each line. Default "sentry-xdp"; "portsentry" keeps old logcheck/fail2ban filters matching. */
  tag?: string;
  /** Problems with the log socket, one line each; never called for every line. */
  report: (line: string) => void;
  /** Clock for the timestamp. Default `() => new Date()`. */
  now?: () => Date;
  /** PID in the line. Default process.pid. */
  pid?: number;
}

/** Longer messages are cut (rsyslog's default maximum is 8 KiB). */
const MAX_MESSAGE_BYTES = 8192;
/** Lines kept while the socket is full or away; more are dropped and counted. */
const MAX_PENDING = 10_000;
/**
 * Retry delay when the receiver's queue is full: 1 ms while it keeps taking lines (the kernel's default
 * net.unix.max_dgram_qlen is only 10 datagrams; systemd raises it to 512), doubling to 50 ms while it takes none.
 */
const RETRY_FULL_MIN_MS = 1;
const RETRY_FULL_MAX_MS = 50;
/** Retry delay when the socket is missing or refuses. */
const RETRY_DOWN_MS = 1000;
/** Stream fallback: bytes allowed to wait in the socket's write buffer. */
const MAX_STREAM_BUFFER = 1 << 20;

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const SUN_PATH_MAX = 108;

interface Libc {
  socket: (domain: number, type: number, protocol: number) => number;
  connect: (fd: number, addr: Buffer, len: number) => number;
  send: (fd: number, buf: Buffer, len: number, flags: number) => number;
  close: (fd: number) => number;
}

let libc: Libc | undefined;
function loadLibc(): Libc {
  if (libc) return libc;
  const lib = koffi.load('libc.so.6');
  libc = {
    socket: lib.func('int socket(int domain, int type, int protocol)'),
    connect: lib.func('int connect(int fd, const void *addr, uint32_t len)'),
    send: lib.func('long send(int fd, const void *buf, size_t len, int flags)'),
    close: lib.func('int close(int fd)'),
  };
  return libc;
}

const errnoNames = new Map<number, string>(Object.entries(koffi.os.errno).map(([k, v]) => [v, k]));
const E = koffi.os.errno as Record<string, number>;
function errnoName(n: number): string {
  return errnoNames.get(n) ?? `errno ${n}`;
}

type SendResult = 'sent' | 'full' | 'down';

export class Syslog {
  readonly path: string;
  readonly facility: number;
  readonly tag: string;
  private readonly reportFn: (line: string) => void;
  private readonly now: () => Date;
  private readonly pid: number;
  private readonly sockaddr: Buffer;

  private fd = -1;
  private stream: Socket | undefined;
  private streamReady = false;
  private pending: Buffer[] = [];
  private dropped = 0;
  private nextConnectAt = 0;
  private downReported = false;
  private timer: NodeJS.Timeout | undefined;
  private fullDelay = RETRY_FULL_MIN_MS;
  private closed = false;
  private unusable = false;

  /** Throws SentryError('CONFIG') for an unknown facility, a tag syslog would misparse, or a path too long for a socket. */
  constructor(opts: SyslogOptions) {
    this.path = opts.path ?? '/dev/log';
    const facility = (opts.facility ?? 'daemon').toLowerCase();
    const code = Object.hasOwn(FACILITIES, facility) ? FACILITIES[facility] : undefined;
    if (code === undefined) {
      throw new SentryError('CONFIG', `syslog facility "${opts.facility}" is unknown`, `use one of ${Object.keys(FACILITIES).join(', ')}`);
    }
    this.facility = code;
    this.tag = opts.tag ?? 'sentry-xdp';
    if (!/^[A-Za-z0-9._/-]{1,48}$/.test(this.tag)) {
      throw new SentryError('CONFIG', `syslog tag "${this.tag}" is not a program name`, 'use letters, digits, . _ / - (at most 48), e.g. portsentry');
    }
    const pathBytes = Buffer.from(this.path);
    if (pathBytes.length === 0 || pathBytes.length >= SUN_PATH_MAX || pathBytes.includes(0)) {
      throw new SentryError(
        'CONFIG',
        `syslog path "${this.path}" cannot be a unix socket path`,
        `give an absolute path shorter than ${SUN_PATH_MAX} bytes, e.g. /dev/log`,
      );
    }
    this.sockaddr = Buffer.alloc(2 + SUN_PATH_MAX);
    this.sockaddr.writeUInt16LE(AF_UNIX, 0);
    pathBytes.copy(this.sockaddr, 2);
    this.reportFn = opts.report;
    this.now = opts.now ?? (() => new Date());
    this.pid = opts.pid ?? process.pid;
  }

  /** The bytes sent for one line (exposed for tests and for `--dry-run` style output). */
  format(severity: SyslogSeverity, line: string): Buffer {
    const pri = this.facility * 8 + (SEVERITIES[severity] ?? SEVERITIES.notice);
    // Control characters would split the line in files (rsyslog writes them as #012), break filters, or drive a terminal.
    let msg = Buffer.from(printable(line.replace(/[\r\n]+$/, '')), 'utf8');
    if (msg.length > MAX_MESSAGE_BYTES) {
      let cut = MAX_MESSAGE_BYTES - 3;
      while (cut > 0 && (msg[cut]! & 0xc0) === 0x80) cut--; // do not split a UTF-8 sequence
      msg = Buffer.concat([msg.subarray(0, cut), Buffer.from('...')]);
    }
    return Buffer.concat([Buffer.from(`<${pri}>${timestamp(this.now())} ${this.tag}[${this.pid}]: `), msg]);
  }

  /** Queues or sends one line. Never throws, never blocks. */
  log(severity: SyslogSeverity, line: string): void {
    if (this.closed || this.unusable) return;
    try {
      const buf = this.format(severity, line);
      if (this.pending.length > 0) {
        this.enqueue(buf);
        return;
      }
      const r = this.trySend(buf);
      if (r !== 'sent') {
        this.enqueue(buf);
        this.schedule(r === 'full' ? this.fullDelay : RETRY_DOWN_MS);
      }
    } catch (e) {
      this.report(`syslog: ${oneLine(e instanceof Error ? e.message : String(e), 300)}`);
    }
  }

  /** Sends what it can of the queue without waiting, then closes the socket. Later lines are ignored. */
  close(): void {
    if (this.closed) return;
    try {
      if (this.pending.length > 0 && !this.stream) this.flush();
    } catch {
      /* closing anyway */
    }
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length + this.dropped > 0) {
      this.report(`syslog: ${this.pending.length + this.dropped} lines not delivered to ${this.path} at close`);
    }
    this.pending = [];
    this.closeFd();
    if (this.stream) {
      this.stream.end();
      this.stream.unref();
      this.stream = undefined;
    }
  }

  private report(line: string): void {
    try {
      this.reportFn(line);
    } catch {
      /* a reporting callback must not break logging */
    }
  }

  private enqueue(buf: Buffer): void {
    if (this.pending.length >= MAX_PENDING) this.dropped++;
    else this.pending.push(buf);
  }

  private schedule(ms: number): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.flush();
      } catch (e) {
        this.report(`syslog: ${oneLine(e instanceof Error ? e.message : String(e), 300)}`);
      }
    }, ms);
    this.timer.unref();
  }

  private flush(): void {
    let sent = 0;
    while (this.pending.length > 0) {
      const r = this.trySend(this.pending[0]!);
      if (r !== 'sent') {
        if (r === 'full') {
          this.fullDelay = sent > 0 ? RETRY_FULL_MIN_MS : Math.min(this.fullDelay * 2, RETRY_FULL_MAX_MS);
          this.schedule(this.fullDelay);
        } else this.schedule(RETRY_DOWN_MS);
        return;
      }
      this.pending.shift();
      sent++;
    }
    this.fullDelay = RETRY_FULL_MIN_MS;
    if (this.dropped > 0) {
      this.report(`syslog: dropped ${this.dropped} lines while ${this.path} was full or unavailable`);
      this.dropped = 0;
    }
  }

  private trySend(buf: Buffer): SendResult {
    if (this.stream) return this.streamSend(buf);
    if (this.fd < 0 && !this.connect()) return 'down';
    if (this.stream) return this.streamSend(buf);
    const c = loadLibc();
    for (let attempt = 0; attempt < 2; attempt++) {
      const n = c.send(this.fd, buf, buf.length, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n >= 0) {
        this.downReported = false;
        return 'sent';
      }
      const err = koffi.errno();
      if (err === E.EAGAIN || err === E.EWOULDBLOCK || err === E.ENOBUFS || err === E.EINTR) return 'full';
      if (err === E.EMSGSIZE) {
        this.report(`syslog: a ${buf.length}-byte line is too long for ${this.path}; dropped`);
        return 'sent';
      }
      // The syslog daemon restarted (ECONNREFUSED) or the socket went away: reconnect once, as glibc does.
      this.closeFd();
      this.nextConnectAt = 0;
      if (attempt === 0 && this.connect()) {
        if (this.stream) return this.streamSend(buf);
        continue;
      }
      this.down(`send: ${errnoName(err)}`);
      return 'down';
    }
    return 'down';
  }

  /** Opens and connects the datagram socket; false (reported once) when it cannot. */
  private connect(): boolean {
    const nowMs = Date.now();
    if (nowMs < this.nextConnectAt) return false;
    let c: Libc;
    try {
      c = loadLibc();
    } catch (e) {
      this.unusable = true;
      this.pending = [];
      this.report(`syslog: cannot load libc through koffi (${oneLine(e instanceof Error ? e.message : String(e))}); not logging to syslog`);
      return false;
    }
    const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      this.nextConnectAt = nowMs + RETRY_DOWN_MS;
      this.down(`socket: ${errnoName(koffi.errno())}`);
      return false;
    }
    if (c.connect(fd, this.sockaddr, this.sockaddr.length) === 0) {
      this.fd = fd;
      return true;
    }
    const err = koffi.errno();
    c.close(fd);
    if (err === E.EPROTOTYPE) {
      this.openStream();
      return true;
    }
    this.nextConnectAt = nowMs + RETRY_DOWN_MS;
    this.down(err === E.ENOENT ? 'it does not exist (no syslog daemon or journald socket?)' : `connect: ${errnoName(err)}`);
    return false;
  }

  /** The socket is SOCK_STREAM (some syslog-ng setups): talk to it through node:net, NUL after each message. */
  private openStream(): void {
    const s = createConnection({ path: this.path });
    this.stream = s;
    this.streamReady = false;
    s.unref();
    s.on('connect', () => {
      this.streamReady = true;
      this.downReported = false;
      this.flush();
    });
    const gone = (why: string): void => {
      if (this.stream !== s) return;
      this.stream = undefined;
      this.streamReady = false;
      s.destroy();
      this.nextConnectAt = Date.now() + RETRY_DOWN_MS;
      if (!this.closed) {
        this.down(why);
        if (this.pending.length > 0) this.schedule(RETRY_DOWN_MS);
      }
    };
    s.on('error', (e: NodeJS.ErrnoException) => gone(`stream: ${e.code ?? oneLine(e.message)}`));
    s.on('close', () => gone('stream closed'));
  }

  private streamSend(buf: Buffer): SendResult {
    const s = this.stream;
    if (!s || !this.streamReady) return 'down';
    if (s.writableLength > MAX_STREAM_BUFFER) return 'full';
    s.write(Buffer.concat([buf, Buffer.from([0])]));
    return 'sent';
  }

  private down(why: string): void {
    if (this.downReported) return;
    this.downReported = true;
    this.report(`syslog: cannot log to ${this.path}: ${why}; lines wait (up to ${MAX_PENDING}) and are retried`);
  }

  private closeFd(): void {
    if (this.fd >= 0) {
      try {
        loadLibc().close(this.fd);
      } catch {
        /* nothing more to do */
      }
      this.fd = -1;
    }
  }
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "Oct  4 19:23:10": local time, day padded with a space, as glibc's strftime("%h %e %T"). */
export function timestamp(d: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
