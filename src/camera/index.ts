/** The simulated body camera: what replay, tests and the CLI call. */
export { recordCamera, type RecordResult, type RecordedFile } from './recorder.js';
export { dockCamera, undockCamera, BAY_NAME_PATTERN, type DockOptions, type UndockOptions } from './docking.js';
export { recordFleet, bayName, type FleetOptions, type FleetCamera } from './fleet.js';
export { loadDevice } from './storage.js';
export { parseFault, resolveRecordOptions, defaultVideoKbps, FAULT_NAMES, type RecordOptions, type Fault, type FaultName } from './options.js';
export { keyPairFromSeed, serialFromSeed } from './identity.js';
export { LAYOUT_NAMES, layoutNamed, type LayoutName } from './layouts.js';
export * from '../protocol/cameraStorage/types.js';
