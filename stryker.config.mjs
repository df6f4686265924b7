// `npm run mutation`: StrykerJS mutation testing of the code that decides a wipe,
// verifies a receipt or a proof of possession, and verifies stored bytes (issue 9).
// Not part of `npm test`. Scores and survivors are in docs/reliability.md "## Mutation testing".
// jest runs ESM here (node --experimental-vm-modules + @swc/jest); the fast, unit-ish test
// files that exercise these modules are listed in jest.mutation.config.js.
export default {
  packageManager: 'npm',
  testRunner: 'jest',
  testRunnerNodeArgs: ['--experimental-vm-modules'],
  jest: { configFile: 'jest.mutation.config.js', enableFindRelatedTests: false },
  coverageAnalysis: 'perTest',
  mutate: [
    'src/dock/pipeline.ts',
  ],
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  concurrency: 2,
  timeoutMS: 60000,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
