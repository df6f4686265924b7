/**
 * systemd's service notification protocol (sd_notify(3)) for `Type=notify` units: READY=1 once
 * the service does its job, WATCHDOG=1 pings at half of WatchdogSec, STOPPING=1 on shutdown.
 *
 * Node has no unix datagram sockets, so each message is sent by systemd's own `systemd-notify`
 * (part of systemd, so present wherever NOTIFY_SOCKET is set by systemd), with `--pid` naming this
 * process; the unit needs `NotifyAccess=all` because the sender is a child. Without NOTIFY_SOCKET
 * nothing happens. A failing send is logged once and never stops the service: a watchdog that
 * cannot ping ends in a restart by systemd, which is the point of a watchdog.
 */
import { execFile } from 'node:child_process';

export interface NotifyLog { warn(msg: string, fields?: Record<string, unknown>): void }

/** The watchdog period systemd asks for (µs in WATCHDOG_USEC), when it is meant for this process. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number = process.pid): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.WATCHDOG_USEC || !Number.isFinite(usec) || usec <= 0) return undefined;
  // WATCHDOG_PID names the process the watchdog is for; a child that inherited the variable is not it.
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

export class SystemdNotifier {
  private watchdog?: NodeJS.Timeout;
  private failed = false;
  private sending: Promise<void> = Promise.resolve();

  private constructor(private readonly env: NodeJS.ProcessEnv, private readonly log: NotifyLog, private readonly binary: string) {}

  /** A notifier when systemd asked for notifications (NOTIFY_SOCKET), else undefined. */
  static fromEnv(log: NotifyLog, env: NodeJS.ProcessEnv = process.env): SystemdNotifier | undefined {
    if (!env.NOTIFY_SOCKET) return undefined;
    return new SystemdNotifier(env, log, 'systemd-notify');
  }

  /** Send the assignments in order (one message per call; calls are sent one after another). */
  send(...assignments: string[]): Promise<void> {
    this.sending = this.sending.then(() => new Promise<void>((resolve) => {
      execFile(this.binary, [`--pid=${process.pid}`, ...assignments], { env: this.env, timeout: 10_000 }, (error) => {
        if (error && !this.failed) {
          this.failed = true;
          this.log.warn('systemd notification failed (is systemd-notify installed?); later failures are not logged', { err: error, assignments });
        }
        resolve();
      });
    }));
    return this.sending;
  }

  /** READY=1 (with a STATUS line), and the watchdog pings from now on when systemd asked for them. */
  ready(status: string): Promise<void> {
    const sent = this.send('READY=1', `STATUS=${status}`);
    const every = watchdogIntervalMs(this.env);
    if (every !== undefined && !this.watchdog) {
      // A ping from a timer proves the event loop runs: a loop blocked for WatchdogSec gets the service restarted.
      this.watchdog = setInterval(() => { void this.send('WATCHDOG=1'); }, every);
      this.watchdog.unref();
    }
    return sent;
  }

  /** STOPPING=1; the pings end (systemd's stop timeout rules from here). */
  stopping(): Promise<void> {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    return this.send('STOPPING=1');
  }
}
