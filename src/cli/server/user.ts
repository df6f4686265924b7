/** `bodycam server user add|remove|list`: the people who may sign in to the console (src/server/console/users.ts). */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { checkName, checkRole, userKey, UserStore } from '../../server/console/users.js';
import { action } from '../handler.js';
import { requireServerDataDir } from './dataDir.js';
import { addToolOptions, givenToolFlags, toolSettings } from './toolSettings.js';

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

export function registerServerUser(server: Command): void {
  const user = server.command('user').description('people who may sign in to the evidence console (/console)');
  addToolOptions(user.command('add')
    .description('add a user (password read from standard input); names are case-insensitive'), 'userAdd')
    .addHelpText('after', `
Examples:
  $ printf '%s' "$PASSWORD" | bodycam server user add --data-dir server-data --name alice --role reviewer
  $ bodycam server user add --data-dir server-data --name ops --role admin < password.txt`)
    .action(action(async (_flags: unknown, command: Command) => {
      const { dataDir, replace, ...given } = toolSettings('userAdd', givenToolFlags(command)).values as { dataDir: string; name: string; role: string; replace: boolean };
      requireServerDataDir(dataDir);
      const name = checkName(given.name);
      const role = checkRole(given.role);
      const password = await readStdinPassword();
      const result = await new UserStore(dataDir).add(name, role, password, { replace });
      process.stdout.write(`user ${name} ${result} (${role}); a running server sees it at the next sign-in\n`);
      return 0;
    }));
  addToolOptions(user.command('remove')
    .description('remove a user, the name in any case (their sessions end at their next request)'), 'userRemove')
    .action(action(async (_flags: unknown, command: Command) => {
      const { dataDir, name } = toolSettings('userRemove', givenToolFlags(command)).values as { dataDir: string; name: string };
      requireServerDataDir(dataDir);
      const removed = await new UserStore(dataDir).remove(name);
      process.stdout.write(removed ? `user ${name} removed\n` : `no user ${name}\n`);
      return removed ? 0 : 3;
    }));
  addToolOptions(user.command('list')
    .description('list users and roles (never passwords)'), 'userList')
    .action(action(async (_flags: unknown, command: Command) => {
      const { dataDir, json } = toolSettings('userList', givenToolFlags(command)).values as { dataDir: string; json: boolean };
      requireServerDataDir(dataDir);
      const { records, conflicting } = await new UserStore(dataDir).list();
      // Names that fold to one (a hand-edited file) sign nobody in until all but one are removed.
      const users = records.map((u) => ({ name: u.name, role: u.role, createdAt: u.createdAt, ...(conflicting.has(userKey(u.name)) ? { conflict: true } : {}) }));
      process.stdout.write(json ? JSON.stringify({ users }) + '\n' : users.map((u) => `${u.name}\t${u.role}\t${u.createdAt}${u.conflict ? '\tCONFLICT: the same name in another case; neither signs in' : ''}`).join('\n') + (users.length ? '\n' : 'no users\n'));
      return 0;
    }));
}
