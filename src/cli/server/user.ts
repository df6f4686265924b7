/** `bodycam server user add|remove|list`: the people who may sign in to the console (src/server/console/users.ts). */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { checkName, checkRole, userKey, UserStore } from '../../server/console/users.js';
import { action } from '../handler.js';

async function readStdinPassword(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('password (then Enter, Ctrl-D): ');
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    total += (chunk as Buffer).length;
    if (total > 4096) throw new UsageError('the password on standard input is longer than 4096 bytes');
    chunks.push(chunk as Buffer);
  }
  // One line: the trailing newline of `echo` or a heredoc is not part of the password.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

const dataDirOf = (command: Command) => {
  const dataDir = command.optsWithGlobals<{ dataDir?: string }>().dataDir;
  if (!dataDir) throw new UsageError('--data-dir is required');
  return dataDir;
};

export function registerServerUser(server: Command): void {
  const user = server.command('user').description('people who may sign in to the evidence console (/console)');
  user.command('add')
    .description('add a user (password read from standard input); names are case-insensitive')
    .option('--data-dir <dir>', 'the server data dir')
    .requiredOption('--name <name>', 'sign-in name')
    .requiredOption('--role <role>', 'reviewer (recordings) or admin (also docks and cameras)')
    .option('--replace', 'the user exists (in any case): set a new password and role')
    .addHelpText('after', `
Examples:
  $ printf '%s' "$PASSWORD" | bodycam server user add --data-dir server-data --name alice --role reviewer
  $ bodycam server user add --data-dir server-data --name ops --role admin < password.txt`)
    .action(action(async (flags: { name: string; role: string; replace?: boolean }, command: Command) => {
      const dataDir = dataDirOf(command);
      const name = checkName(flags.name);
      const role = checkRole(flags.role);
      const password = await readStdinPassword();
      const result = await new UserStore(dataDir).add(name, role, password, { replace: flags.replace === true });
      process.stdout.write(`user ${name} ${result} (${role}); a running server sees it at the next sign-in\n`);
      return 0;
    }));
  user.command('remove')
    .description('remove a user, the name in any case (their sessions end at their next request)')
    .option('--data-dir <dir>', 'the server data dir')
    .requiredOption('--name <name>', 'sign-in name')
    .action(action(async (flags: { name: string }, command: Command) => {
      const removed = await new UserStore(dataDirOf(command)).remove(flags.name);
      process.stdout.write(removed ? `user ${flags.name} removed\n` : `no user ${flags.name}\n`);
      return removed ? 0 : 3;
    }));
  user.command('list')
    .description('list users and roles (never passwords)')
    .option('--data-dir <dir>', 'the server data dir')
    .option('--json', 'one JSON object')
    .action(action(async (flags: { json?: boolean }, command: Command) => {
      const { records, conflicting } = await new UserStore(dataDirOf(command)).list();
      // Names that fold to one (a hand-edited file) sign nobody in until all but one are removed.
      const users = records.map((u) => ({ name: u.name, role: u.role, createdAt: u.createdAt, ...(conflicting.has(userKey(u.name)) ? { conflict: true } : {}) }));
      process.stdout.write(flags.json ? JSON.stringify({ users }) + '\n' : users.map((u) => `${u.name}\t${u.role}\t${u.createdAt}${u.conflict ? '\tCONFLICT: the same name in another case; neither signs in' : ''}`).join('\n') + (users.length ? '\n' : 'no users\n'));
      return 0;
    }));
}
