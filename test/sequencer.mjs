/**
 * jest testSequencer: the longest suites start first, so that the workers finish together.
 *
 * jest's own sequencer orders by the durations of the previous run in its cache folder and, without
 * one (a clean clone, CI), by file size: there the 90 s replay scenarios suite, a small file,
 * started near the end and ran alone while the other worker sat idle. A suite without a cached
 * duration here takes the one in test/suite-seconds.json (measured seconds, alone, refreshed by
 * hand: docs/benchmarks.md "Test suite time"); a suite in neither (a new file) counts as
 * NEW_SUITE_SECONDS. Failed-last-time suites still go first, as in jest's own order.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import jestSequencer from '@jest/test-sequencer';

const BaseSequencer = jestSequencer.default ?? jestSequencer;
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
/** A new test file must take under 15 s alone (CONTRACT): guess a few seconds until it is measured. */
const NEW_SUITE_SECONDS = 5;

function committedSeconds() {
  try {
    const parsed = JSON.parse(readFileSync(join(here, 'suite-seconds.json'), 'utf8'));
    return parsed.seconds ?? {};
  } catch {
    return {};
  }
}

export default class LongestFirstSequencer extends BaseSequencer {
  constructor(options) {
    super(options);
    this.committed = committedSeconds();
  }

  /** Milliseconds: jest's cached duration of the last run, else the committed figure, else a guess. */
  time(test) {
    const cached = super.time(test);
    if (cached != null) return cached;
    const seconds = this.committed[relative(root, test.path).split('\\').join('/')];
    return (typeof seconds === 'number' ? seconds : NEW_SUITE_SECONDS) * 1000;
  }

  sort(tests) {
    for (const test of tests) test.duration = this.time(test);
    return [...tests].sort((a, b) => {
      const failedA = this.hasFailed(a);
      const failedB = this.hasFailed(b);
      if (failedA !== failedB) return failedA ? -1 : 1;
      return b.duration - a.duration || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    });
  }
}
