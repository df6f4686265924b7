/**
 * What replay tells people and CI: a table of expected vs actual per recording,
 * and JUnit XML with one testcase per recording expectation (what CI systems
 * render as test results).
 */
import type { ServerProblemTally } from '../dock/index.js';
import { table } from '../util/table.js';

export interface CaseResult {
  scenario: string;
  /** "<camera>/<file name>" */
  recording: string;
  expected: string;
  actual: string;
  passed: boolean;
  /** Why it failed, in one line. */
  message?: string;
  /** Seconds from the start of the scenario until the case was decided. */
  seconds: number;
}

export interface ScenarioResult {
  scenario: string;
  file: string;
  cases: CaseResult[];
  seconds: number;
  /** A failure of the scenario as a whole (could not start, fixture missing). */
  error?: string;
  /** The scenario itself is wrong (a recording without an expectation, a step that cannot be): replay exits 2. */
  invalid?: boolean;
  /** What the fault proxy saw and injected: proof that the faults happened. */
  network?: Record<string, number>;
  /** The problem answers the dock got from the server, with counts (the dock's `serverProblems`). */
  serverProblems?: ServerProblemTally[];
}

/** At most `max` characters, cut at a word's end with "…" (never mid-word: a cut command name misleads). */
export function clipWords(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:(]+$/, '')}…`;
}

/** One line: what the server answered the dock, most answers first, e.g. "401 unauthorized ×12 (http://…: unknown bearer token)". */
export function describeServerProblems(problems: readonly ServerProblemTally[] | undefined): string | undefined {
  if (!problems?.length) return undefined;
  return problems.slice(0, 6).map((p) => `${p.status} ${p.code} ×${p.count} (${p.endpoint}${p.detail ? `: ${clipWords(p.detail, 160)}` : ''})`).join('; ')
    + (problems.length > 6 ? `; and ${problems.length - 6} more` : '');
}

export function scenarioPassed(result: ScenarioResult): boolean {
  return !result.error && result.cases.every((c) => c.passed);
}

/** Plain-text table, one row per case, columns padded to at most 60 characters. */
export function formatTable(results: ScenarioResult[]): string {
  const rows: string[][] = [['scenario', 'recording', 'expected', 'actual', 'result']];
  for (const result of results) {
    if (result.error) rows.push([result.scenario, '-', '-', result.error, 'ERROR']);
    for (const c of result.cases) rows.push([c.scenario, c.recording, c.expected, c.actual, c.passed ? 'ok' : 'FAIL']);
  }
  let out = table(rows, { maxColumnWidth: 60, headerRule: true }).slice(0, -1);
  // Why a recording did not get anywhere, in the server's words: its problem codes, not only "uploading after 60s".
  for (const result of results) {
    const answered = describeServerProblems(result.serverProblems);
    if (answered && !scenarioPassed(result)) out += `\n${result.scenario}: the server answered ${answered}`;
  }
  return out;
}

function xmlEscape(text: string): string {
  return text
    // XML 1.0 forbids most control characters even when escaped
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, '')
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** JUnit XML: one testsuite per scenario, one testcase per recording expectation. */
export function junitXml(results: ScenarioResult[]): string {
  const total = results.reduce((n, r) => n + r.cases.length + (r.error ? 1 : 0), 0);
  const failures = results.reduce((n, r) => n + r.cases.filter((c) => !c.passed).length, 0);
  const errors = results.filter((r) => r.error).length;
  const seconds = results.reduce((s, r) => s + r.seconds, 0);
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="bodycam replay" tests="${total}" failures="${failures}" errors="${errors}" time="${seconds.toFixed(3)}">`,
  ];
  for (const result of results) {
    const caseFailures = result.cases.filter((c) => !c.passed).length;
    out.push(`  <testsuite name="${xmlEscape(result.scenario)}" tests="${result.cases.length + (result.error ? 1 : 0)}" failures="${caseFailures}" errors="${result.error ? 1 : 0}" time="${result.seconds.toFixed(3)}" file="${xmlEscape(result.file)}">`);
    if (result.network) {
      out.push('    <properties>');
      for (const [name, value] of Object.entries(result.network)) out.push(`      <property name="proxy.${xmlEscape(name)}" value="${value}"/>`);
      out.push('    </properties>');
    }
    if (result.error) {
      out.push(`    <testcase classname="${xmlEscape(result.scenario)}" name="(scenario)" time="0">`);
      out.push(`      <error message="${xmlEscape(result.error)}"/>`);
      out.push('    </testcase>');
    }
    for (const c of result.cases) {
      out.push(`    <testcase classname="${xmlEscape(result.scenario)}" name="${xmlEscape(c.recording)}" time="${c.seconds.toFixed(3)}">`);
      if (!c.passed) {
        const answered = describeServerProblems(result.serverProblems);
        const message = (c.message ?? `expected ${c.expected}, got ${c.actual}`) + (answered ? `; the server answered ${answered}` : '');
        out.push(`      <failure message="${xmlEscape(message)}">${xmlEscape(`expected: ${c.expected}\nactual:   ${c.actual}`)}</failure>`);
      }
      out.push(`      <system-out>${xmlEscape(`expected: ${c.expected}; actual: ${c.actual}`)}</system-out>`);
      out.push('    </testcase>');
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return out.join('\n') + '\n';
}
