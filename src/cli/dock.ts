/**
 * `bodycam dock`: the dock ingest agent. Its options are generated from the one
 * config schema (src/dock/config.ts), so flags, BODYCAM_* variables and the
 * config file can never drift apart.
 */
import { Option, type Command } from 'commander';
import { DOCK_CONFIG_SCHEMA, envNameOf, flagNameOf, loadDockConfig, runOnce, startDockAgent, wipeUnfinished } from '../dock/index.js';
import { trustServer } from '../dock/trust.js';
import { DOCK_SETTINGS, formatConfigValue, parseEndpoints, resolveDockSettings, type ConfigKind } from '../dock/config.js';
import { redactPassword, requireSettings } from '../util/settings.js';
import { startProgress } from './render/bays.js';
import { action } from './handler.js';
import { registerDockConfig } from './commands/dockConfig/index.js';
import { joinRepeated } from './dockSettings.js';
import { runDryRunCommand } from './commands/dockDryRun/index.js';
import { enterServiceMode, say, tell } from './output.js';
import { SystemdNotifier } from '../util/sdNotify.js';
import { untilStopSignal } from './signals.js';
import { isIntegrityProblem } from '../protocol/types.js';

/** What a value of each kind looks like, in the flag's usage. */
const PLACEHOLDER: Record<ConfigKind, string> = { string: 'text', path: 'path', boolean: '', int: 'n', duration: 'duration', bytes: 'size', rate: 'rate' };

export function registerDock(program: Command): void {
  const command = program.command('dock')
    .description('Run the dock ingest agent: watch the bays, hash and upload every recording, wipe only on signed receipt')
    .option('--config <file>', 'JSON config file (keys as below, camelCase; unknown keys are an error) [BODYCAM_CONFIG]');
  for (const [key, spec] of Object.entries(DOCK_CONFIG_SCHEMA)) {
    // A boolean that defaults to true is switched off with --no-<flag>: its help says so, not what the key does when on.
    const negated = spec.kind === 'boolean' && spec.default === true;
    const flag = spec.kind === 'boolean' ? (negated ? flagNameOf(key).replace(/^--/, '--no-') : flagNameOf(key)) : `${flagNameOf(key)} <${PLACEHOLDER[spec.kind]}>`;
    // Defaults as a person writes them (16MiB, 24h), as the README's reference shows them.
    const defaultText = 'required' in spec && spec.required ? 'required' : spec.default === undefined ? undefined : negated ? `default on; ${flag} turns it off` : `default ${formatConfigValue(spec, spec.default)}`;
    const option = new Option(flag, `${spec.description} [${envNameOf(key)}${defaultText ? `; ${defaultText}` : ''}]`);
    // --endpoint may be repeated: the servers are joined into one comma-separated list.
    if (key === 'endpoint') option.argParser(joinRepeated);
    command.addOption(option);
  }
  command.addHelpText('after', '\nPrecedence: flags > BODYCAM_* environment > --config file > defaults.\nExit codes with --once: 0 all receipted, 3 some quarantined or flagged (listed on stderr), 1 other failure, 2 usage.\n\nExamples:\n  $ echo a-long-random-token > dock.token\n  $ bodycam dock --bays bays --endpoint http://127.0.0.1:8443 --token-file dock.token --state-dir dock-state --dock-id dock-01\n  $ bodycam dock --bays bays --endpoint http://127.0.0.1:8443 --token-file dock.token --state-dir dock-state --dock-id dock-01 --once --wipe-after-ingest --server-key server-key.pub.pem\n  $ BODYCAM_CONFIG=/etc/bodycam/dock.json bodycam dock               # every key from the file (see scripts/dock.example.json)');
  // Options after `trust-server` belong to it (the dock's own --fingerprint is the media fingerprint switch).
  command.enablePositionalOptions();
  registerDockConfig(command);
  command.command('trust-server')
    .description('Confirm the ingest server\'s receipt key out of band and pin it in the journal: the only way besides --server-key that lets --wipe-after-ingest run')
    .option('--config <file>', 'the dock\'s JSON config file: its stateDir and endpoint, as `bodycam dock` reads them [BODYCAM_CONFIG]')
    .option('--state-dir <dir>', 'the dock\'s state folder (the journal holds the confirmed pin) [BODYCAM_STATE_DIR]')
    .option('--endpoint <url>', 'base URL of the ingest server as the dock uses it; the dock\'s comma-separated list (or the flag repeated): every server must have the key [BODYCAM_ENDPOINT]', joinRepeated)
    .requiredOption('--fingerprint <keyId>', 'the server\'s keyId as its operator gave it: hex SHA-256 of the public key\'s SPKI DER (GET /v1/keys shows it)')
    .addHelpText('after', '\nFetches GET <endpoint>/v1/keys (of each endpoint), checks that the SHA-256 of the key\'s SPKI DER is the fingerprint, and records the\nconfirmed pin in <state-dir>/journal.sqlite. --state-dir and --endpoint come from the flags, BODYCAM_* or --config as for `bodycam dock`.\nExit 0 pinned, 1 the key differs or cannot be fetched (nothing pinned), 2 usage.\nRestart a running dock afterwards.\n\nExamples:\n  $ bodycam dock trust-server --state-dir /var/lib/bodycam --endpoint https://ingest.example:8443 --fingerprint <64 hex>\n  $ bodycam dock trust-server --config /etc/bodycam/dock.json --fingerprint <64 hex>')
    .action(action(async (given: { config?: string; stateDir?: string; endpoint?: string; fingerprint: string }) => {
      const keys = ['stateDir', 'endpoint'] as const;
      const flags = { ...(given.config ? { config: given.config } : {}), ...(given.stateDir ? { stateDir: given.stateDir } : {}), ...(given.endpoint ? { endpoint: given.endpoint } : {}) };
      const { values } = resolveDockSettings({ flags }, keys);
      requireSettings(DOCK_SETTINGS, values, keys);
      const stateDir = values.stateDir as string;
      const endpoint = parseEndpoints(values.endpoint as string).join(',');
      const result = await trustServer({ stateDir, endpoint, fingerprint: given.fingerprint });
      say(`confirmed server key ${result.keyId} of ${redactPassword(endpoint)}: pinned in ${stateDir}; --wipe-after-ingest may run (restart a running dock)\n`);
      return 0;
    }));
  command.action(action(async (flags: Record<string, unknown>) => {
    enterServiceMode('dock');
    // Values commander filled in itself (--no-x implies a default) must not outrank env or the file.
    for (const key of Object.keys(flags)) if (command.getOptionValueSource(key) === 'default') delete flags[key];
    const config = loadDockConfig({ flags, configFile: flags.config as string | undefined });
    if (config.dryRun) return runDryRunCommand(config);
    if (config.once) {
      const result = await runOnce(config);
      // The report, one line per recording that did not simply go through (a log record each when stderr is JSON).
      for (const r of result.recordings) {
        const about = { file: r.file, ...(r.bay ? { bay: r.bay } : {}), ...(r.recordingId ? { recordingId: r.recordingId } : {}), state: r.state };
        if (r.state === 'completed' || r.state === 'wiped') {
          if (r.unreadable) tell(`flagged: ${r.file} ${r.recordingId ?? ''} unreadable: uploaded as opaque bytes, kept on the camera (${r.unreadable})`, { ...about, unreadable: r.unreadable }, 'warn');
          else if (isIntegrityProblem(r.integrity)) tell(`flagged: ${r.file} ${r.recordingId ?? ''} integrity ${r.integrity}`, { ...about, integrity: r.integrity }, 'warn');
          else if (r.truncated) tell(`flagged: ${r.file} ${r.recordingId ?? ''} truncated (power-loss cut)`, { ...about, truncated: true }, 'warn');
          if (r.wipeKept && config.wipeAfterIngest) tell(`kept: ${r.file}: ${r.wipeKept}: ${r.reason ?? 'not wiped'}`, { ...about, wipeKept: r.wipeKept }, 'warn');
          else if (config.wipeAfterIngest && wipeUnfinished(r)) tell(`not wiped: ${r.file}: ${r.lastError}`, { ...about, code: 'wipe_failed' }, 'error');
        } else if (r.state === 'quarantined') {
          tell(`quarantined: ${r.file}: ${r.reasonCode ?? 'unknown'}: ${r.reason ?? ''}`, { ...about, reasonCode: r.reasonCode ?? 'unknown' }, 'warn');
        } else {
          // A recording the refusal of every server stopped carries that refusal as its reason (runOnce).
          tell(`not offloaded: ${r.file} (${r.state})${r.reason ? `: ${r.reason}` : ''}`, { ...about, ...(result.refused[0] ? { code: result.refused[0].code } : {}) }, 'error');
        }
      }
      for (const u of result.unscanned) tell(`not scanned: ${u.bay}: ${u.reason}`, { bay: u.bay, code: 'scan_slow' }, 'error');
      for (const k of result.skipped) tell(`skipped: ${k.bay}/${k.path}: ${k.code}: ${k.reason}`, { bay: k.bay, path: k.path, code: k.code }, 'warn');
      // The camera's own .system folder is no news on every docking: it is listed on the bay only.
      const benign = result.skippedCount - result.skipped.length - (result.skippedByCode.device_internal ?? 0);
      if (benign > 0) tell(`left alone: ${benign} other path(s) (hidden, temporary or stray .json files; listed by \`bodycam status\`)`, { leftAlone: benign });
      // A request stuck in the kernel (the card reader that never answered) keeps Node's event loop
      // alive: exit now rather than wait on it. (Node's exit still joins the thread that holds it, so
      // the process ends when the kernel gives up on the device; the report above is out already,
      // written synchronously, and the journal is closed.)
      if (result.unscanned.length) process.exit(result.exitCode);
      return result.exitCode;
    }
    // The stop handlers go in before the agent starts: its status port answers during the first scan, and a
    // SIGTERM then (systemctl stop, a supervisor seeing it up) is a clean stop once the start is done, never
    // Node's default kill. A second signal while it waits is the default again (exit now).
    const stopped = untilStopSignal();
    const agent = await startDockAgent(config);
    const stopProgress = startProgress(() => agent.status());
    // SIGHUP (systemctl reload): the token and server key files again; a bad file changes nothing.
    const reload = (): void => {
      let next;
      try {
        next = loadDockConfig({ flags, configFile: flags.config as string | undefined });
      } catch (error) {
        tell(`reload refused, the dock keeps running as it was: ${(error as Error).message}`, { err: error }, 'error');
        return;
      }
      agent.reload(next).catch((error: unknown) => { tell(`reload refused, the dock keeps running as it was: ${(error as Error).message}`, { err: error }, 'error'); });
    };
    process.on('SIGHUP', reload);
    // Type=notify: ready once the journal is open, the status port bound and the bays scanned (startDockAgent
    // did all three), and the stop handlers are in place (a SIGTERM right after READY is handled).
    const systemd = SystemdNotifier.fromEnv({ warn: (msg, fields) => tell(msg, fields, 'warn') });
    await systemd?.ready(`offloading ${agent.status().bays.length} bay(s)`);
    await stopped;
    process.off('SIGHUP', reload);
    await systemd?.stopping();
    stopProgress();
    await agent.stop();
    return 0;
  }));
}
