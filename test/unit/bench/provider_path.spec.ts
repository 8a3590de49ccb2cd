/**
 * The benchmarks measure what `pulumi up` runs: our side goes through the dynamic provider the SDK
 * registers (`providerUp` with the engine module the SDK names), never through an engine function
 * or an option the provider does not use.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { APT_ENGINE, IMAGE_ENGINE } from "../../../bench/lib/provider-path";

// Compiled to lib/test/unit/bench: the sources are four levels up.
const root = join(__dirname, "..", "..", "..", "..");
const source = (rel: string) => readFileSync(join(root, rel), "utf8");
const benchFiles = ["bench", "bench/lib", "bench/images-lib"].flatMap((dir) =>
    readdirSync(join(root, dir))
        .filter((f) => f.endsWith(".ts"))
        .map((f) => `${dir}/${f}`),
);

describe("benchmarks go through the provider's entry point", () => {
    it("the engine modules are the ones the SDK's resources forward to", () => {
        assert.match(source("sdk/aptMirror.ts"), new RegExp(`forwardingProvider\\("${APT_ENGINE}"\\)`));
        assert.match(source("sdk/imageMirror.ts"), new RegExp(`forwardingProvider\\("${IMAGE_ENGINE}"\\)`));
        const path = source("bench/lib/provider-path.ts");
        assert.match(path, /import \{ forwardingProvider \} from "\.\.\/\.\.\/provider\/dynamic\/provider"/);
    });

    it("our side of each benchmark calls providerUp with that module", () => {
        assert.match(source("bench/images-lib/ours.ts"), /providerUp<[^>]*>\(IMAGE_ENGINE, job\.inputs, previous\)/);
        assert.match(source("bench/lib/run-ours.ts"), /providerUp<[^>]*>\(APT_ENGINE, inputs, previous\)/);
    });

    it("no benchmark calls the sync steps directly or passes what the provider does not", () => {
        assert.ok(benchFiles.length >= 10, benchFiles.join(" "));
        for (const file of benchFiles) {
            const text = source(file);
            for (const banned of [
                /\bcopyImages\b/,
                /\bcopyImage\b/,
                /\bsyncImages\s*\(/,
                /\bsyncMirror\s*\(/,
                /\bBlobLocationCache\b/,
                /\bRegistrySession\b/,
                /\bopenImage(Source|Destination)\b/,
                // syncMirror's `upstream` option (what a resolve fetched): the provider never has it.
                /[{,]\s*upstream\s*\}/,
                /\bresolveLock\s*\(/,
                /\bfetchUpstream\b/,
            ]) {
                assert.doesNotMatch(text, banned, `${file} must not use ${banned}`);
            }
        }
    });
});
