import type { Command } from 'commander';
import { notYetAvailable } from './notYet.js';

export function registerDemo(program: Command): void {
  program.command('demo')
    .description('First run: server, three simulated cameras and a three-bay dock on loopback, with a summary (what `npm start` runs)')
    .action(notYetAvailable('demo'));
}
