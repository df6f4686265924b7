/**
 * The one wait for an operator's stop (Ctrl-C, `systemctl stop`): every long-running command
 * (`dock`, `server`, `demo --stay`) waits here, then shuts down in order. The listeners go away
 * with the first signal, so a second Ctrl-C during a slow shutdown is Node's default: exit now.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM';

export function untilStopSignal(): Promise<StopSignal> {
  return new Promise((resolve) => {
    const onInt = (): void => stop('SIGINT');
    const onTerm = (): void => stop('SIGTERM');
    const stop = (signal: StopSignal): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(signal);
    };
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}
