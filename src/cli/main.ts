/**
 * `bodycam`: one executable, one command per file in this folder.
 */
import { Command, CommanderError } from 'commander';
import { registerCamera } from './camera.js';
import { registerDemo } from './demo.js';
import { registerDock } from './dock.js';
import { registerReplay } from './replay.js';
import { registerServer } from './server.js';
import { registerStatus } from './status.js';
import { registerQuarantine } from './commands/quarantine/index.js';
import { registerDoctor } from './commands/doctor/index.js';
import { registerCheck } from './commands/check/index.js';
import { reportError } from './handler.js';
import { errnoCode } from '../errors.js';
import { VERSION } from '../util/version.js';

export function buildProgram(): Command {
  const program = new Command('bodycam')
    .description('Body-worn camera evidence toolkit: simulated camera, dock ingest agent, reference ingest server, CI replay')
    .version(VERSION, '-V, --version', 'print the bodycam-dock version and exit')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // A subcommand's options are its own (`bodycam dock trust-server --fingerprint` is not the dock's --fingerprint).
    .enablePositionalOptions()
    .addHelpText('after', `
Examples:
  $ bodycam demo                                  # the first run: server, 3 cameras, a dock, a summary
  $ bodycam replay fixtures/scenarios --junit replay.xml
  $ bodycam <command> --help                      # every command has its own examples`);
  registerCamera(program);
  registerDock(program);
  registerServer(program);
  registerReplay(program);
  registerStatus(program);
  registerDemo(program);
  registerQuarantine(program);
  registerDoctor(program);
  registerCheck(program);
  return program;
}

/**
 * A reader that went away (`bodycam --help | head -1`, `bodycam status | true`) is not a failure
 * of the command: on EPIPE of stdout, stop at once with the exit status so far, and never print a
 * stack. EPIPE on stderr is ignored (nobody is left to read it; a service's log goes on by its own fd).
 */
export function quietOnClosedPipes(): void {
  process.stdout.on('error', (error) => {
    if (errnoCode(error) === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    throw error;
  });
  process.stderr.on('error', (error) => {
    if (errnoCode(error) !== 'EPIPE') throw error;
  });
}

export async function main(argv: string[]): Promise<void> {
  quietOnClosedPipes();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has already printed its one-line message (or the help/version)
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    process.exitCode = reportError(error);
  }
}

await main(process.argv);
