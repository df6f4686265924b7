import type { Command } from 'commander';
import { notYetAvailable } from './notYet.js';

export function registerDock(program: Command): void {
  program.command('dock')
    .description('Run the dock ingest agent: watch the bays, hash and upload every recording, wipe only on signed receipt')
    .action(notYetAvailable('dock'));
}
