import { describe, expect, it } from '@jest/globals';
import { untilStopSignal } from '../../src/cli/signals.js';

/** The one stop wait of dock, server and demo --stay: either signal ends it, and it leaves no listener behind. */
describe('untilStopSignal', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} ends the wait and removes both listeners`, async () => {
      const before = { int: process.listenerCount('SIGINT'), term: process.listenerCount('SIGTERM') };
      const waiting = untilStopSignal();
      expect(process.listenerCount('SIGINT')).toBe(before.int + 1);
      expect(process.listenerCount('SIGTERM')).toBe(before.term + 1);
      process.emit(signal);
      await expect(waiting).resolves.toBe(signal);
      expect({ int: process.listenerCount('SIGINT'), term: process.listenerCount('SIGTERM') }).toEqual(before);
    });
  }
});
