import assert from "node:assert/strict";
import { lockDigest, lockText, parseLock } from "../../../provider/apt/lock_text";
import { specOf, validateAptMirrorSpec } from "../../../provider/apt/operations";

/** The lock as the program passes it to the provider: `name/arch version` lines. */
describe("the lock as text", () => {
    it("is sorted by key whatever the map's order, round-trips, and its digest is the map's", () => {
        const lock = { "zlib1g/amd64": "1:1.2.13.dfsg-1", "app/amd64": "1.0-1 1.1-1", "base-files/all": "12.4" };
        const text = lockText(lock);
        assert.equal(text, "app/amd64 1.0-1 1.1-1\nbase-files/all 12.4\nzlib1g/amd64 1:1.2.13.dfsg-1\n");
        assert.deepEqual(parseLock(text), lock);
        assert.equal(lockDigest(text), lockDigest(lock));
        assert.notEqual(lockDigest(text), lockDigest({ ...lock, "app/amd64": "1.0-1" }));
        assert.equal(lockText({}), "");
        assert.deepEqual(parseLock(""), {});
    });

    it("external entries keep their spaces (`version from <url> <suite>`)", () => {
        const external = { "libc6/amd64": "2.36-9 from http://deb.example/debian bookworm" };
        assert.deepEqual(parseLock(lockText(external)), external);
    });

    it("a line that does not parse is named by number; a key listed twice is refused", () => {
        assert.throws(() => parseLock("app/amd64 1.0\nbroken\n"), /line 2 "broken" is not `name\/arch version`/);
        assert.throws(() => parseLock("app 1.0\n"), /line 1 "app 1\.0"/);
        assert.throws(() => parseLock("app/amd64 1\napp/amd64 2\n"), /line 2: app\/amd64 is listed twice/);
        assert.throws(() => parseLock(["app/amd64 1"]), /must be the lock/);
        assert.throws(() => parseLock({ "app/amd64": 1 }), /"app\/amd64" must map to a version string/);
    });

    it("the provider names the argument of a lock that does not parse", async () => {
        const inputs = {
            source: { url: "http://deb.example/debian", distribution: "bookworm", allowUnsigned: true },
            packages: "app/amd64 1.0-1\nnot a lock line\n",
            external: 7 as unknown as string,
            publish: { root: "/", prefix: "debian" },
            allowUnsigned: true,
        };
        const problems = await validateAptMirrorSpec(inputs);
        assert.deepEqual(
            problems.filter((p) => p.argument === "packages" || p.argument === "external").map((p) => p.argument),
            ["packages", "external"],
        );
        assert.match(problems.find((p) => p.argument === "packages")!.problem, /line 2 "not a lock line"/);
        assert.throws(
            () => specOf(inputs),
            (err: Error) => /^packages: line 2/.test(err.message),
        );
        assert.deepEqual(specOf({ ...inputs, external: undefined, packages: "app/amd64 1.0-1\n" }).packages, {
            "app/amd64": "1.0-1",
        });
    });
});
