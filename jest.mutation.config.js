// The jest config StrykerJS uses (stryker.config.mjs): the main config, limited to the
// fast test files that exercise the wipe decision, receipt and possession checks and
// the store's verified reads, so one mutation run takes minutes, not hours.
import base from './jest.config.js';

export default {
  ...base,
  testMatch: [
    '<rootDir>/test/dock/wipeGuard.test.ts',
    '<rootDir>/test/server/possession.test.ts',
    '<rootDir>/test/server/fsStore.test.ts',
  ],
};
