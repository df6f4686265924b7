// The jest config StrykerJS uses (stryker.config.mjs): the main config, limited to the fast,
// in-process test files that exercise the wipe decision, the receipt and possession checks and
// the store's verified reads, so one mutation run takes minutes, not hours. (Tests that start the
// built CLI run dist/, which Stryker does not mutate: they cannot kill a mutant.)
import base from './jest.config.js';

export default {
  ...base,
  // Crawl only what the tests load: the haste map of the whole sandbox costs seconds per mutant.
  roots: ['<rootDir>/src', '<rootDir>/test'],
  maxWorkers: 1,
  testMatch: [
    '<rootDir>/test/unit/wipeDecision.test.ts',
    '<rootDir>/test/server/possession.test.ts',
    '<rootDir>/test/server/store/fsStore.test.ts',
    '<rootDir>/test/dock/wipeRecording.test.ts',
    '<rootDir>/test/dock/wipePauseRaces.test.ts',
    '<rootDir>/test/server/possessionProof.test.ts',
  ],
};
