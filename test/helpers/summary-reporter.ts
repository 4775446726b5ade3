import type { Reporter, TestModule } from 'vitest/node';

/**
 * Ends the run with one plain line, "tests: N passed, N failed, N skipped", that any CI can read.
 * With CI set, a skipped test fails the run: CI installs everything the tests need, so a skip there
 * means a test that did not run, not one that cannot.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    const skipped: string[] = [];
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped.push(`${m.moduleId.replace(/^.*\/test\//, 'test/')}: ${t.fullName}`);
      }
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) failed++;
    }
    // after the default reporter's summary: the very last lines of the run
    process.once('exit', () => {
      process.stdout.write(`tests: ${passed} passed, ${failed} failed, ${skipped.length} skipped\n`);
      if (process.env.CI && skipped.length > 0) {
        process.stdout.write(`CI must run every test; skipped:\n${skipped.map((s) => `  ${s}`).join('\n')}\n`);
        process.exitCode = 1;
      }
    });
  }
}
