/**
 * `bodycam dock`: the dock ingest agent. Its options are generated from the one
 * config schema (src/dock/config.ts), so flags, BODYCAM_* variables and the
 * config file can never drift apart.
 */
import { Option, type Command } from 'commander';
import { DOCK_CONFIG_SCHEMA, envNameOf, flagNameOf, loadDockConfig, runOnce, startDockAgent } from '../dock/index.js';
import { startProgress } from '../dock/progress.js';
import { action } from './handler.js';

export function registerDock(program: Command): void {
  const command = program.command('dock')
    .description('Run the dock ingest agent: watch the bays, hash and upload every recording, wipe only on signed receipt')
    .option('--config <file>', 'JSON config file (keys as below, camelCase; unknown keys are an error)');
  for (const [key, spec] of Object.entries(DOCK_CONFIG_SCHEMA)) {
    // A boolean that defaults to true is switched off with --no-<flag>.
    const flag = spec.kind === 'boolean' ? (spec.default === true ? flagNameOf(key).replace(/^--/, '--no-') : flagNameOf(key)) : `${flagNameOf(key)} <value>`;
    const defaultText = 'required' in spec && spec.required ? 'required' : spec.default === undefined ? undefined : `default ${String(spec.default)}`;
    command.addOption(new Option(flag, `${spec.description} [${envNameOf(key)}${defaultText ? `; ${defaultText}` : ''}]`));
  }
  command.addHelpText('after', '\nPrecedence: flags > BODYCAM_* environment > --config file > defaults.\nExit codes with --once: 0 all receipted, 3 some quarantined or flagged (listed on stderr), 1 other failure, 2 usage.\n\nExamples:\n  $ echo a-long-random-token > dock.token\n  $ bodycam dock --bays bays --endpoint http://127.0.0.1:8443 --token-file dock.token --dock-id dock-01\n  $ bodycam dock --bays bays --endpoint http://127.0.0.1:8443 --token-file dock.token --dock-id dock-01 --once --wipe-after-ingest');
  command.action(action(async (flags: Record<string, unknown>) => {
    // Values commander filled in itself (--no-x implies a default) must not outrank env or the file.
    for (const key of Object.keys(flags)) if (command.getOptionValueSource(key) === 'default') delete flags[key];
    const config = loadDockConfig({ flags, configFile: flags.config as string | undefined });
    if (config.once) {
      const result = await runOnce(config);
      for (const r of result.recordings) {
        if (r.state === 'completed' || r.state === 'wiped') {
          if (r.integrity && r.integrity !== 'verified' && r.integrity !== 'unsigned') process.stderr.write(`flagged: ${r.file} ${r.recordingId ?? ''} integrity ${r.integrity}\n`);
          else if (r.truncated) process.stderr.write(`flagged: ${r.file} ${r.recordingId ?? ''} truncated (power-loss cut)\n`);
        } else if (r.state === 'quarantined') {
          process.stderr.write(`quarantined: ${r.file}: ${r.reasonCode ?? 'unknown'}: ${r.reason ?? ''}\n`);
        } else {
          process.stderr.write(`not offloaded: ${r.file} (${r.state})${r.reason ? `: ${r.reason}` : ''}\n`);
        }
      }
      return result.exitCode;
    }
    const agent = await startDockAgent(config);
    const stopProgress = startProgress(() => agent.status());
    await new Promise<void>((resolve) => {
      const onSignal = (): void => { process.off('SIGTERM', onSignal); process.off('SIGINT', onSignal); resolve(); };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    });
    stopProgress();
    await agent.stop();
    return 0;
  }));
}
