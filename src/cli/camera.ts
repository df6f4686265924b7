import type { Command } from 'commander';
import { notYetAvailable } from './notYet.js';

export function registerCamera(program: Command): void {
  program.command('camera')
    .description('Simulate a body-worn camera or a fleet: record, dock, undock')
    .action(notYetAvailable('camera'));
}
