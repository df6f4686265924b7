/** The fault-injecting TCP proxy for tests (src/faultproxy/faultProxy.ts): put it between a dock and a server. */
export { startFaultProxy, normalizeFaultMode, FAULT_MODE_KINDS, type FaultMode, type FaultModeKind, type FaultProxy, type FaultProxyStats, type FaultProxyOptions } from '../../src/faultproxy/faultProxy.js';
