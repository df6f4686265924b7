// `npm run mutation`: StrykerJS mutation testing of the code that decides a wipe, verifies a
// receipt or a proof of possession, and verifies stored bytes (issue 9). Not part of `npm test`.
// Scores and the survivors are discussed in docs/reliability.md "## Mutation testing".
// jest runs ESM here (node --experimental-vm-modules + @swc/jest); jest.mutation.config.js limits it
// to the fast, in-process test files that exercise these modules, so a run takes minutes.
// Line ranges pick the wipe/receipt/possession/verified-read parts of the larger files.
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  testRunnerNodeArgs: ['--experimental-vm-modules'],
  jest: { configFile: 'jest.mutation.config.js', enableFindRelatedTests: false },
  coverageAnalysis: 'perTest',
  mutate: [
    'src/dock/wipe.ts',
    'src/dock/pipeline.ts:311-349',
    'src/server/store/verifiedRead.ts',
    'src/server/store/fsStore.ts:123-262',
    'src/server/ingest.ts:336-371',
  ],
  // Log lines and reason texts are not decisions: mutating them only adds noise (and hours on a loaded box).
  ignoreStatic: true,
  mutator: { excludedMutations: ['StringLiteral'] },
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'json', 'html'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  concurrency: 1,
  timeoutMS: 30000,
  timeoutFactor: 2,
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
