// FC_RUNS_FACTOR scales the default number of cases of every fast-check property (test/helpers/fcRuns.ts
// scales the ones that set their own).
import fc from 'fast-check';
import { runs } from './helpers/fcRuns.js';

fc.configureGlobal({ numRuns: runs(100) });
