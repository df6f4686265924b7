import type { Command } from 'commander';
import { notYetAvailable } from './notYet.js';

export function registerServer(program: Command): void {
  program.command('server')
    .description('Run the reference ingest server (protocol v1): verify, store, sign receipts, keep the custody log')
    .action(notYetAvailable('server'));
}
