import type { Command } from 'commander';
import { notYetAvailable } from './notYet.js';

export function registerReplay(program: Command): void {
  program.command('replay')
    .description('Replay fixture scenarios through camera, dock and server on loopback and check the expected outcomes (CI)')
    .action(notYetAvailable('replay'));
}
