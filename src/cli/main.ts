/**
 * `bodycam`: one executable, one command per file in this folder.
 */
import { Command, CommanderError } from 'commander';
import { reportError } from './handler.js';
import { errnoCode } from '../errors.js';
import { VERSION } from '../util/version.js';

type Register = (program: Command) => void;

/**
 * Each command's module, loaded only when it runs: together they import the server (fastify,
 * the S3 and PostgreSQL clients), replay and the demo, about 0.8 s of CPU at every start of
 * `bodycam dock` that would otherwise be spent on code it never calls (docs/benchmarks.md).
 */
const COMMANDS: Record<string, () => Promise<Register>> = {
  camera: async () => (await import('./camera.js')).registerCamera,
  dock: async () => (await import('./dock.js')).registerDock,
  server: async () => (await import('./server.js')).registerServer,
  replay: async () => (await import('./replay.js')).registerReplay,
  status: async () => (await import('./status.js')).registerStatus,
  demo: async () => (await import('./demo.js')).registerDemo,
  quarantine: async () => (await import('./commands/quarantine/index.js')).registerQuarantine,
  doctor: async () => (await import('./commands/doctor/index.js')).registerDoctor,
  check: async () => (await import('./commands/check/index.js')).registerCheck,
};

/**
 * The program with the command `argv` names (argv[2]), or with every command when it names none
 * of them (`bodycam --help`, a typo: commander then lists or suggests them all).
 */
export async function buildProgram(argv: readonly string[] = process.argv): Promise<Command> {
  const name = argv[2];
  const chosen = name !== undefined && Object.hasOwn(COMMANDS, name) ? [COMMANDS[name]!] : Object.values(COMMANDS);
  const registers = await Promise.all(chosen.map((load) => load()));
  return programWith(registers);
}

function programWith(registers: readonly Register[]): Command {
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
  for (const register of registers) register(program);
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
  const program = await buildProgram(argv);
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
