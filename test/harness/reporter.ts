/**
 * Mocha reporter: the usual spec output, plus a JSON summary of the real results written to
 * $AIRGAP_TEST_SUMMARY, from which scripts/test.sh prints its closing line.
 */
import * as fs from "node:fs";
import Mocha from "mocha";

const { EVENT_RUN_END, EVENT_TEST_FAIL, EVENT_TEST_PASS, EVENT_TEST_PENDING } = Mocha.Runner.constants;

class SummaryReporter extends Mocha.reporters.Spec {
    constructor(runner: Mocha.Runner, options: Mocha.MochaOptions) {
        super(runner, options);
        const counts = { passed: 0, failed: 0, skipped: 0, failures: [] as string[] };
        runner.on(EVENT_TEST_PASS, () => {
            counts.passed++;
        });
        runner.on(EVENT_TEST_FAIL, (test) => {
            counts.failed++;
            counts.failures.push(test.fullTitle());
        });
        runner.on(EVENT_TEST_PENDING, () => {
            counts.skipped++;
        });
        runner.once(EVENT_RUN_END, () => {
            const out = process.env.AIRGAP_TEST_SUMMARY;
            if (out) {
                fs.writeFileSync(out, JSON.stringify(counts));
            }
        });
    }
}

export = SummaryReporter;
