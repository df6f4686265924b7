/**
 * The layout of a camera's storage: a contract between the camera (which writes
 * it) and the dock and replay (which read it), kept beside the wire protocol.
 */
export * from './types.js';
export * from './walk.js';
export * from './device.js';
