import type { Command } from 'commander';
import { notYetAvailable } from './notYet.js';

export function registerStatus(program: Command): void {
  program.command('status')
    .description('Show the bays and the queue of a running dock agent')
    .action(notYetAvailable('status'));
}
