import type { Command } from 'commander';
import { parseDuration } from '../util/units.js';
import { formatTable, replay, scenarioPassed } from '../replay/index.js';
import { action } from './handler.js';
import { say } from './output.js';

interface ReplayFlags {
  junit?: string;
  timeout?: string;
  endpoint?: string;
  tokenFile?: string;
  dockId?: string;
  dockKeyDir?: string;
  serverKey?: string;
  serverFingerprint?: string;
  keep?: boolean;
  quiet?: boolean;
}

export function registerReplay(program: Command): void {
  program.command('replay')
    .description('Replay fixture scenarios through camera, dock and server on loopback and check the expected outcomes (CI)')
    .argument('<scenario...>', 'scenario file(s) or folder(s) of them (every *.json inside)')
    .option('--junit <file>', 'write JUnit XML: one testcase per recording expectation')
    .option('--timeout <duration>', 'per scenario: undecided expectations fail after this (e.g. 90s; default: the scenario\'s own, else 120s)')
    .option('--endpoint <url>', 'replay against this running ingest server instead of starting the reference one (http://)')
    .option('--token-file <file>', 'with --endpoint: file holding a dock token that server accepts')
    .option('--dock-id <id>', 'with --endpoint: the dock id that token belongs to')
    .option('--dock-key-dir <dir>', 'with --endpoint: keep the replay dock key pair here between runs (default .bodycam/replay-dock-key/<dock id>)')
    .option('--server-key <file>', 'with --endpoint: PEM file of that server\'s receipt key (needed by scenarios that wipe, or --server-fingerprint)')
    .option('--server-fingerprint <keyId>', 'with --endpoint: that server\'s keyId (hex SHA-256 of its SPKI DER), checked against its GET /v1/keys')
    .option('--keep', 'keep each scenario\'s temporary folder for a post-mortem (its path is printed)')
    .option('--quiet', 'print only the table and the failures')
    .addHelpText('after', `
Exit status: 0 every expectation held, 1 some did not (each failure names its recording), 2 a scenario is invalid.

Examples:
  $ bodycam replay fixtures/scenarios                         # every shipped scenario
  $ bodycam replay fixtures/scenarios/clean-two-cameras.json --junit replay.xml
  $ bodycam replay my-scenario.json --endpoint http://127.0.0.1:8443 --token-file dock.token --dock-id ci-dock --server-key server-key.pub.pem`)
    .action(action(async (paths: string[], flags: ReplayFlags) => {
      const onProgress = flags.quiet ? undefined : (line: string) => { process.stderr.write(line + '\n'); };
      const run = await replay(paths, {
        ...(flags.junit ? { junit: flags.junit } : {}),
        ...(flags.timeout ? { timeout: parseDuration(flags.timeout, '--timeout') } : {}),
        ...(flags.endpoint ? { endpoint: flags.endpoint } : {}),
        ...(flags.tokenFile ? { tokenFile: flags.tokenFile } : {}),
        ...(flags.dockId ? { dockId: flags.dockId } : {}),
        ...(flags.dockKeyDir ? { dockKeyDir: flags.dockKeyDir } : {}),
        ...(flags.serverKey ? { serverKey: flags.serverKey } : {}),
        ...(flags.serverFingerprint ? { serverFingerprint: flags.serverFingerprint } : {}),
        ...(flags.keep ? { keep: true } : {}),
        ...(onProgress ? { onProgress } : {}),
      });
      say(formatTable(run.results) + '\n');
      const cases = run.results.flatMap((r) => r.cases);
      const held = cases.filter((c) => c.passed).length;
      for (const result of run.results) {
        if (result.error) say(`ERROR ${result.scenario}: ${result.error}\n`);
        for (const c of result.cases) if (!c.passed) say(`FAIL ${result.scenario}: ${c.message}\n`);
      }
      const broken = run.results.filter((r) => !scenarioPassed(r)).length;
      say(`replay: ${held}/${cases.length} expectations held in ${run.results.length} scenario(s)${broken ? `, ${broken} scenario(s) failed` : ''}${flags.junit ? `; JUnit XML in ${flags.junit}` : ''}\n`);
      // A wrong scenario is the user's mistake (2), as a schema error is; a failed expectation is 1.
      if (run.results.some((r) => r.invalid)) return 2;
      return run.passed ? 0 : 1;
    }));
}
