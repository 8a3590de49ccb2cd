import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as util from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { AirgapError } from "../../../provider/errors";
import { describeProgramError, inputsDigest, pinnedLock, ProgramInputError, resolvingInput } from "../../../sdk/lock";

describe("program-time errors", () => {
    it("name the resource, keep an engine message that starts with its argument, and file others under the fallback", () => {
        const named = new AirgapError("ERR_NOT_FOUND", 'packages[1] "x" matches nothing', { argument: "packages[1]" });
        assert.equal(
            describeProgramError("AptMirror", "debian", named, "source"),
            'AptMirror "debian": packages[1] "x" matches nothing',
        );
        const unnamed = new Error("fetching InRelease from http://u/dists/b/InRelease: connect ECONNREFUSED");
        assert.equal(
            describeProgramError("AptMirror", "debian", unnamed, "source"),
            'AptMirror "debian": source: fetching InRelease from http://u/dists/b/InRelease: connect ECONNREFUSED',
        );
        // An argument the message does not start with is not trusted to be in it.
        const elsewhere = new AirgapError("ERR_AUTH", "401 from the registry", { argument: "credentials" });
        assert.equal(
            describeProgramError("ImageMirror", "r", elsewhere, "images"),
            'ImageMirror "r": images: 401 from the registry',
        );
    });

    it("are RunErrors whose message survives the runtime's prefix and whose stack is the message alone", () => {
        const err = new ProgramInputError('AptMirror "d": packages[0] "x" matches nothing', {
            code: "ERR_NOT_FOUND",
            argument: "packages[0]",
        });
        assert.ok(pulumi.RunError.isInstance(err));
        // What the runtime does to a rejected input (same object, message prefixed).
        err.message = `error serializing property "packages": ${err.message}`;
        assert.equal(err.message, 'AptMirror "d": packages[0] "x" matches nothing');
        assert.equal(err.stack, 'ProgramInputError: AptMirror "d": packages[0] "x" matches nothing');
        assert.equal(err.code, "ERR_NOT_FOUND");
        assert.equal(err.argument, "packages[0]");
        // Coloured inspection (what the runtime does with every uncaught error) stays small and
        // quick: no stack frames, no cause.
        const started = Date.now();
        const shown = util.inspect(err, { colors: true });
        assert.ok(Date.now() - started < 1000);
        assert.doesNotMatch(shown, /\n\s+at /);
    });

    it("resolvingInput turns a failed resolution into one ProgramInputError and passes success through", async () => {
        assert.equal(await resolvingInput("ImageMirror", "r", "images", async () => 7), 7);
        await assert.rejects(
            resolvingInput("ImageMirror", "r", "images", async () => {
                throw new AirgapError("ERR_NETWORK", "http://h/v2/ failed after 4 attempts");
            }),
            (err: ProgramInputError) => {
                assert.equal(err.name, "ProgramInputError");
                assert.equal(err.message, 'ImageMirror "r": images: http://h/v2/ failed after 4 attempts');
                assert.equal(err.code, "ERR_NETWORK");
                return true;
            },
        );
    });
});

describe("pinnedLock", () => {
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-lock-"));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("writes the lock with its inputs digest, then reads it back without resolving while the inputs match", async () => {
        const file = path.join(dir, "debian.lock.json");
        const inputs = inputsDigest({ queries: ["app"] });
        let resolved = 0;
        const resolve = async () => {
            resolved++;
            return { "app/amd64": "1.0-1" };
        };
        const opts = { name: "debian", file, inputs, field: "packages", extra: { source: { url: "u" } }, resolve };
        assert.deepEqual(await pinnedLock(opts), { "app/amd64": "1.0-1" });
        assert.deepEqual(JSON.parse(fs.readFileSync(file, "utf8")), {
            version: 1,
            inputs,
            source: { url: "u" },
            packages: { "app/amd64": "1.0-1" },
        });
        assert.deepEqual(await pinnedLock(opts), { "app/amd64": "1.0-1" });
        assert.equal(resolved, 1);
        // Other inputs: resolved again, and the file follows.
        const other = inputsDigest({ queries: ["app", "jq"] });
        await pinnedLock({ ...opts, inputs: other });
        assert.equal(resolved, 2);
        assert.equal(JSON.parse(fs.readFileSync(file, "utf8")).inputs, other);
        assert.deepEqual(
            fs.readdirSync(dir).filter((f) => f.includes(".tmp")),
            [],
        );
    });

    it("refuses a lock file that is not JSON, naming lockFile, and leaves it as it was", async () => {
        const file = path.join(dir, "images.lock.json");
        fs.writeFileSync(file, "<<<<<<< merge conflict\n");
        await assert.rejects(
            pinnedLock({ name: "r", file, inputs: "x", field: "images", resolve: async () => ({}) }),
            (err: Error & { argument?: string }) => {
                assert.match(
                    err.message,
                    /^lockFile: .*images\.lock\.json is not valid JSON at line 1, column 1: InvalidSymbol: fix or remove it$/,
                );
                assert.equal(err.argument, "lockFile");
                return true;
            },
        );
        assert.equal(fs.readFileSync(file, "utf8"), "<<<<<<< merge conflict\n");
    });

    it("names the line and column of bad JSON in a lock file edited by hand", async () => {
        const file = path.join(dir, "debian.lock.json");
        const text = '{\n  "version": 1,\n  "inputs": "x"\n  "packages": {}\n}\n';
        fs.writeFileSync(file, text);
        await assert.rejects(
            pinnedLock({ name: "d", file, inputs: "x", field: "packages", resolve: async () => ({}) }),
            /^Error: lockFile: .*debian\.lock\.json is not valid JSON at line 4, column 3: CommaExpected: fix or remove it$/,
        );
        assert.equal(fs.readFileSync(file, "utf8"), text);
    });

    it("refuses a lock file of another format version, or one that is not an object, rather than guessing", async () => {
        const file = path.join(dir, "debian.lock.json");
        const resolve = async () => ({ "app/amd64": "1.0-1" });
        for (const [content, reason] of [
            [
                '{"version": 2, "inputs": "x", "packages": {}}',
                /has format version 2; this version of pulumi-airgap reads version 1/,
            ],
            ['{"inputs": "x", "packages": {}}', /has format version undefined/],
            ["[1, 2]", /is not a lock file \(not a JSON object\)/],
        ] as const) {
            fs.writeFileSync(file, content);
            await assert.rejects(pinnedLock({ name: "d", file, inputs: "x", field: "packages", resolve }), reason);
            assert.equal(fs.readFileSync(file, "utf8"), content);
        }
    });
});
