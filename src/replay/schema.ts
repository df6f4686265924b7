/**
 * The scenario format (`bodycam-scenario/1`), in ONE schema: what `bodycam
 * replay` accepts, what docs and README describe, and what the loader checks
 * before anything starts. A scenario names the fixture cameras, the bays they
 * dock into and when, the network faults between dock and server, and the
 * outcome expected for every recording.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { LAYOUT_NAMES, resolveRecordOptions, type Codec, type Container, type LayoutName, type RecordOptions } from '../camera/index.js';
import { DOCK_CONFIG_SCHEMA } from '../dock/index.js';
import { normalizeFaultMode, FAULT_MODE_KINDS, type FaultMode } from '../faultproxy/faultProxy.js';
import { compileSchema, placeStep, type JsonSchema } from '../util/jsonSchema.js';
import { INTEGRITY_STATUSES } from '../protocol/types.js';

export const SCENARIO_FORMAT = 'bodycam-scenario/1';

/** JSON Schema for "exactly one of these keys" (how a step names its action): the validator says it in those words. */
function exactlyOne(keys: readonly string[]): Array<{ required: string[] }> {
  return keys.map((key) => ({ required: [key] }));
}

export const INTEGRITY_VALUES = INTEGRITY_STATUSES;
export type ExpectedIntegrity = typeof INTEGRITY_VALUES[number];

/** Keys replay sets itself; a scenario cannot override them. */
const RESERVED_DOCK_KEYS = ['bays', 'endpoint', 'tokenFile', 'stateDir', 'once', 'wipeAfterIngest', 'statusPort'];

const name = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' } as const;
const seconds = { type: 'number', minimum: 0 } as const;
/** "<camera>/<file name>", or "<camera>/*" for every recording of that camera. */
const recordingRef = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*/.+$' } as const;

const condition = {
  type: 'object',
  description: 'Fires when this holds (exactly one of seconds, segmentsUploaded, uploading, ingested, quarantined, linkRestored).',
  additionalProperties: false,
  oneOf: exactlyOne(['seconds', 'segmentsUploaded', 'uploading', 'ingested', 'quarantined', 'linkRestored']),
  properties: {
    seconds: { ...seconds, description: 'Seconds after the previous step ran.' },
    segmentsUploaded: { type: 'integer', minimum: 1, description: 'The server holds at least this many segments (of `recording` if given, else in total).' },
    recording: { ...recordingRef, description: 'Scope of segmentsUploaded.' },
    uploading: { ...recordingRef, description: 'The server has this recording in state "receiving".' },
    ingested: { ...recordingRef, description: 'The server has this recording complete.' },
    quarantined: { ...recordingRef, description: 'The dock has quarantined this recording.' },
    linkRestored: { const: true, description: 'The last network fault has run its course (its `for`, `count` or `times` is spent): the link carries traffic again (pass, latency or bandwidth).' },
  },
};

/** The scenario format as a JSON Schema (draft-07): docs/schemas/scenario.schema.json is this object. */
export const scenarioSchema: JsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://bodycam-dock.invalid/schemas/scenario.schema.json',
  title: 'bodycam replay scenario (bodycam-scenario/1)',
  type: 'object',
  additionalProperties: false,
  required: ['format', 'name', 'dock', 'cameras', 'steps', 'expect'],
  properties: {
    $schema: { type: 'string', description: 'Where an editor finds this schema, e.g. "../../docs/schemas/scenario.schema.json" (ignored by replay).' },
    format: { const: SCENARIO_FORMAT, description: 'The scenario format and its version.' },
    name: { ...name, description: 'The scenario\'s name in the report and the JUnit XML.' },
    description: { type: 'string', description: 'What the scenario shows, for people.' },
    timeout: { type: 'number', exclusiveMinimum: 0, description: 'Seconds before undecided expectations fail (default 120; --timeout overrides).' },
    dock: {
      type: 'object',
      description: 'The dock under test: its bays and its settings.',
      additionalProperties: false,
      required: ['bays'],
      properties: {
        bays: { type: 'array', minItems: 1, items: name, description: 'Bay names; each becomes a folder under the bays root.' },
        wipeAfterIngest: { type: 'boolean', description: 'Dock policy: wipe a camera file after its verified receipt (default true).' },
        settings: { type: 'object', description: 'Any other dock configuration key (see the configuration reference), e.g. {"settle": 1}.' },
      },
    },
    cameras: {
      type: 'object',
      description: 'Camera name → a committed fixture camera root (`fixture`, relative to the scenario file; copied to temporary storage before docking), or a camera the simulator records when the replay starts (`record`: any maker\'s card layout and container).',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        oneOf: exactlyOne(['fixture', 'record']),
        properties: {
          fixture: { type: 'string', minLength: 1, description: 'A committed camera root, relative to the scenario file.' },
          record: {
            type: 'object',
            additionalProperties: false,
            description: 'Recorded at 320x240, 15 fps, 100 kbit/s like the fixtures; seeded (default seed: the camera name), so every run has the same bytes.',
            properties: {
              layout: { enum: LAYOUT_NAMES, description: 'Card layout (docs/camera-storage.md, "Other makers\' layouts"); default bodycam.' },
              container: { enum: ['fmp4', 'mpegts', 'mp4', 'm2ts'], description: 'Default: the layout\'s own (bodycam fmp4, gopro mp4, avchd m2ts, ...).' },
              codec: { enum: ['h264', 'hevc'], description: 'Video codec (default h264).' },
              count: { type: 'integer', minimum: 1, maximum: 20, description: 'Recordings to make (default 1).' },
              duration: { type: 'number', exclusiveMinimum: 0, maximum: 60, description: 'Seconds per recording (default 2).' },
              maxFileDuration: { type: 'number', exclusiveMinimum: 0, description: 'Seconds: longer recordings roll over into parts (GoPro chapters, AVCHD clips).' },
              trigger: { type: 'string', minLength: 1, description: 'e.g. "impact" puts a dashcam recording in Event/.' },
              critical: { type: 'boolean', description: 'Marks the recordings critical (the layouts that have such a flag).' },
              faults: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'Camera faults for the last file, e.g. ["power-loss"].' },
              seed: { type: 'string', minLength: 1, description: 'Seed of the recorded bytes (default: the camera name).' },
            },
          },
        },
      },
    },
    steps: {
      type: 'array',
      description: 'Run in order; each waits for its `at` (seconds since start) or `after` condition, else runs right after the previous one.',
      items: {
        type: 'object',
        additionalProperties: false,
        oneOf: exactlyOne(['dock', 'undock', 'network', 'restartDock']),
        properties: {
          at: { ...seconds, description: 'Seconds since the replay started.' },
          after: condition,
          dock: { ...name, description: 'Camera to dock (its storage appears in `bay`).' },
          bay: { ...name, description: 'Bay for `dock`.' },
          undock: { ...name, description: 'Camera to take out of its bay.' },
          network: { type: 'object', description: `Fault proxy mode between dock and server: {"kind": one of ${FAULT_MODE_KINDS.join(', ')}, ...}.` },
          restartDock: { const: true, description: 'Stop the dock agent (as systemd would) and start it again on the same journal: it must resume, not restart.' },
          for: { type: 'number', exclusiveMinimum: 0, description: 'With `network`: seconds before the link goes back to the mode it had before this step.' },
        },
      },
    },
    expect: {
      type: 'array',
      description: 'The outcome expected for every recording on the cameras (each recording covered by one entry).',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['recording', 'outcome'],
        properties: {
          recording: { ...recordingRef, description: '"<camera>/<file name>" or "<camera>/*"; one test case per recording matched.' },
          outcome: { enum: ['ingested', 'quarantined'], description: 'ingested: the server holds it complete and returns it byte-exact; quarantined: the dock set it aside.' },
          integrity: { enum: INTEGRITY_VALUES, description: 'With ingested: the integrity status the server records (omit to not check).' },
          truncated: { type: 'boolean', description: 'With ingested: whether the dock found the media cut short (power loss).' },
          reason: { type: 'string', minLength: 1, description: 'With quarantined: text the dock\'s reason contains (case-insensitive), e.g. "zero-byte".' },
          reasonCode: { type: 'string', pattern: '^[a-z][a-z0-9_]*$', description: 'With quarantined: the dock\'s stable reason code, matched exactly, e.g. "zero_byte" (docs/dock.md lists them).' },
          camera: { enum: ['wiped', 'kept'], description: 'The file on the camera at the end: deleted by the dock, or still there.' },
        },
      },
    },
  },
};

export type Condition =
  | { seconds: number }
  | { segmentsUploaded: number; recording?: string }
  | { uploading: string }
  | { ingested: string }
  | { quarantined: string }
  | { linkRestored: true };

export type StepAction =
  | { dock: string; bay: string }
  | { undock: string }
  | { network: FaultMode; for?: number }
  | { restartDock: true };

export type Step = StepAction & { at?: number; after?: Condition };

export interface Expectation {
  recording: string;
  outcome: 'ingested' | 'quarantined';
  integrity?: ExpectedIntegrity;
  truncated?: boolean;
  reason?: string;
  reasonCode?: string;
  camera?: 'wiped' | 'kept';
}

export interface Scenario {
  format: typeof SCENARIO_FORMAT;
  name: string;
  description?: string;
  timeout?: number;
  dock: { bays: string[]; wipeAfterIngest?: boolean; settings?: Record<string, unknown> };
  cameras: Record<string, { fixture: string } | { record: RecordedCamera }>;
  steps: Step[];
  expect: Expectation[];
}

/** A scenario camera the simulator records when the replay starts. */
export interface RecordedCamera {
  layout?: LayoutName;
  container?: Container;
  codec?: Codec;
  count?: number;
  duration?: number;
  maxFileDuration?: number;
  trigger?: string;
  critical?: boolean;
  faults?: string[];
  seed?: string;
}

/** The simulator's options for a recorded scenario camera: small like the fixtures, seeded by its name. */
export function recordOptionsOf(record: RecordedCamera, storage: string, camera: string): RecordOptions {
  return {
    storage, layout: record.layout, container: record.container, codec: record.codec, count: record.count,
    durationSeconds: record.duration ?? 2, maxFileDurationSeconds: record.maxFileDuration, trigger: record.trigger,
    critical: record.critical, faults: record.faults, seed: record.seed ?? `replay-${camera}`,
    width: 320, height: 240, fps: 15, videoKbps: 100, audioKbps: 32,
  };
}

export interface LoadedScenario {
  scenario: Scenario;
  file: string;
  /** Camera name → absolute path of its fixture root (fixture cameras). */
  fixtures: Record<string, string>;
  /** Camera name → what to record (cameras the simulator makes at start). */
  recorded: Record<string, RecordedCamera>;
}

let validator: ReturnType<typeof compileSchema> | undefined;
function scenarioValidator(): ReturnType<typeof compileSchema> {
  if (!validator) {
    const { $id: _id, ...body } = scenarioSchema;
    validator = compileSchema(body);
  }
  return validator;
}

/** Schema and cross-reference problems of a parsed scenario; empty when it is sound. */
export function scenarioProblems(value: unknown): string[] {
  const errors = scenarioValidator().problems(value);
  if (errors.length > 0) return errors;
  const scenario = value as Scenario;
  const cameras = new Set(Object.keys(scenario.cameras));
  // A camera to record must be one the simulator can make (a layout writes only its own containers, ...).
  for (const [camera, source] of Object.entries(scenario.cameras)) {
    if (!('record' in source)) continue;
    try {
      resolveRecordOptions(recordOptionsOf(source.record, `/nonexistent/${camera}`, camera));
    } catch (error) {
      errors.push(`${placeStep(placeStep('cameras', camera), 'record')}: ${(error as Error).message}`);
    }
  }
  const bays = new Set(scenario.dock.bays);
  const cameraOf = (ref: string, where: string): void => {
    const camera = ref.slice(0, ref.indexOf('/'));
    if (!cameras.has(camera)) errors.push(`${where}: camera "${camera}" is not in cameras (${[...cameras].join(', ') || 'none'})`);
  };
  for (const key of Object.keys(scenario.dock.settings ?? {})) {
    if (!Object.hasOwn(DOCK_CONFIG_SCHEMA, key)) errors.push(`${placeStep('dock.settings', key)}: not a dock configuration key`);
    else if (RESERVED_DOCK_KEYS.includes(key)) errors.push(`${placeStep('dock.settings', key)}: set by replay itself${key === 'wipeAfterIngest' ? ' (use dock.wipeAfterIngest)' : ''}`);
  }
  // Steps run in order, so where each camera is at each step is known before anything starts.
  const bayOfCamera = new Map<string, string>();
  const cameraInBay = new Map<string, string>();
  scenario.steps.forEach((step, i) => {
    const where = `steps[${i}]`;
    if ('dock' in step && typeof step.bay === 'string') {
      if (bayOfCamera.has(step.dock)) errors.push(`${where}: ${step.dock} is already docked in ${bayOfCamera.get(step.dock)} (undock it first)`);
      else if (cameraInBay.has(step.bay)) errors.push(`${where}: bay ${step.bay} is occupied by ${cameraInBay.get(step.bay)} (undock it first)`);
      else { bayOfCamera.set(step.dock, step.bay); cameraInBay.set(step.bay, step.dock); }
    }
    if ('undock' in step) {
      const bay = bayOfCamera.get(step.undock);
      if (bay === undefined) errors.push(`${where}: ${step.undock} is not docked at this point`);
      else { bayOfCamera.delete(step.undock); cameraInBay.delete(bay); }
    }
    if (step.at !== undefined && step.after !== undefined) errors.push(`${where}: use either at or after, not both`);
    if ('dock' in step) {
      if (!cameras.has(step.dock)) errors.push(`${where}.dock: camera "${step.dock}" is not in cameras`);
      if (step.bay === undefined) errors.push(`${where}.bay: is required with dock`);
      else if (!bays.has(step.bay)) errors.push(`${where}.bay: bay "${step.bay}" is not in dock.bays (${[...bays].join(', ')})`);
    } else if ((step as { bay?: string }).bay !== undefined) {
      errors.push(`${where}.bay: only goes with dock`);
    }
    if ('undock' in step && !cameras.has(step.undock)) errors.push(`${where}.undock: camera "${step.undock}" is not in cameras`);
    if ('network' in step) {
      try {
        normalizeFaultMode(step.network);
      } catch (error) {
        errors.push(`${where}.network: ${(error as Error).message}`);
      }
    } else if ((step as { for?: number }).for !== undefined) {
      errors.push(`${where}.for: only goes with network`);
    }
    const after = step.after as Record<string, string | number> | undefined;
    for (const key of ['recording', 'uploading', 'ingested', 'quarantined']) {
      if (after && typeof after[key] === 'string') cameraOf(after[key] as string, `${where}.after.${key}`);
    }
    if (after && after.recording !== undefined && after.segmentsUploaded === undefined) errors.push(`${where}.after.recording: only goes with segmentsUploaded`);
  });
  scenario.expect.forEach((expectation, i) => {
    const where = `expect[${i}]`;
    cameraOf(expectation.recording, `${where}.recording`);
    if (expectation.outcome === 'quarantined' && expectation.integrity !== undefined) errors.push(`${where}.integrity: only goes with outcome "ingested"`);
    if (expectation.outcome === 'quarantined' && expectation.truncated !== undefined) errors.push(`${where}.truncated: only goes with outcome "ingested"`);
    if (expectation.outcome === 'ingested' && expectation.reason !== undefined) errors.push(`${where}.reason: only goes with outcome "quarantined"`);
    if (expectation.outcome === 'ingested' && expectation.reasonCode !== undefined) errors.push(`${where}.reasonCode: only goes with outcome "quarantined"`);
    if (expectation.outcome === 'quarantined' && expectation.camera === 'wiped') errors.push(`${where}.camera: a quarantined recording is never wiped (use "kept")`);
  });
  return errors;
}

/** Read, parse and check a scenario file; every problem is reported at once, each with its place. */
export function loadScenario(file: string): LoadedScenario {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new UsageError(`cannot read scenario ${file}: ${(cause as Error).message}`, { cause, code: 'E_SCENARIO' });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new UsageError(`scenario ${file} is not valid JSON: ${(cause as Error).message}`, { cause, code: 'E_SCENARIO' });
  }
  const problems = scenarioProblems(parsed);
  if (problems.length > 0) {
    throw new UsageError(`scenario ${file} is invalid: ${problems.join('; ')}`, { code: 'E_SCENARIO', details: { problems } });
  }
  const scenario = parsed as Scenario;
  for (const step of scenario.steps) {
    if ('network' in step) step.network = normalizeFaultMode(step.network);
  }
  const fixtures: Record<string, string> = {};
  const recorded: Record<string, RecordedCamera> = {};
  const missing: string[] = [];
  for (const [camera, source] of Object.entries(scenario.cameras)) {
    if ('fixture' in source) {
      fixtures[camera] = resolve(dirname(path), source.fixture);
      // A fixture that is not there is a mistake in the scenario (exit 2 before anything runs), not a failed replay.
      if (!existsSync(fixtures[camera]!)) missing.push(`cameras.${camera}.fixture: no fixture at ${fixtures[camera]}`);
    } else recorded[camera] = source.record;
  }
  if (missing.length > 0) throw new UsageError(`scenario ${file} is invalid: ${missing.join('; ')}`, { code: 'E_SCENARIO', details: { problems: missing } });
  return { scenario, file: path, fixtures, recorded };
}
