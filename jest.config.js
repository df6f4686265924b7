// Jest runs the TypeScript sources as native ESM (node --experimental-vm-modules),
// transpiled by swc; type-checking is tsc's job in `npm test`, not jest's.
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', {
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'es6' },
      sourceMaps: 'inline',
    }],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // StrykerJS's sandbox copies of the repo (npm run mutation) are not ours to crawl.
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp/'],
  // Real engines (Ceph RGW, PostgreSQL) start on first use, once per run, and stop here: test/helpers/engines.ts.
  globalSetup: '<rootDir>/test/engines/globalSetup.ts',
  globalTeardown: '<rootDir>/test/engines/globalTeardown.ts',
  testTimeout: 120000,
  // FC_NUM_RUNS: how many runs each fast-check property makes (test/fcSetup.ts).
  // test/hashWorkerSetup.ts: hash jobs run on the built worker, as in the dock.
  setupFiles: ['<rootDir>/test/fcSetup.ts', '<rootDir>/test/hashWorkerSetup.ts'],
  // Three workers on the 2-core machine: much of the suite waits (outage's night, fault holds, crash-loop
  // sleeps, bandwidth caps, settle and rescan intervals), and a third worker fills those waits with CPU work
  // (docs/benchmarks.md, "Test suite time"). The tests wait on conditions with generous deadlines, never on
  // time, and passed at load 20-30, so the third worker's load costs time, not passes.
  maxWorkers: 3,
  // Longest suites first (jest's cache of the last run, else test/suite-seconds.json), so the workers end together.
  testSequencer: '<rootDir>/test/sequencer.mjs',
};
