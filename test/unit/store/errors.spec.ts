import assert from "node:assert/strict";
import { UnsatisfiableDependenciesError } from "../../../provider/apt/resolver";
import { AirgapError, invalidArgument, isAirgapError, parseError, problemOf } from "../../../provider/errors";

describe("isAirgapError", () => {
    it("recognises engine errors by their code, subclasses and copies of the class included", () => {
        assert.ok(isAirgapError(new AirgapError("ERR_NETWORK", "x")));
        assert.ok(isAirgapError(new UnsatisfiableDependenciesError([])));
        // What a second copy of the module (a serialized provider) would make: same code, other class.
        assert.ok(isAirgapError(Object.assign(new Error("y"), { code: "ERR_VERIFICATION" })));
    });

    it("does not take Node's own error codes, or non-errors, for ours", () => {
        assert.ok(!isAirgapError(Object.assign(new Error("gone"), { code: "ENOENT" })));
        assert.ok(!isAirgapError(Object.assign(new Error("cut"), { code: "ERR_STREAM_PREMATURE_CLOSE" })));
        assert.ok(!isAirgapError({ code: "ERR_NETWORK", message: "a plain object" }));
        assert.ok(!isAirgapError(undefined));
    });

    it("errors about an argument or a line carry them as fields, and problemOf strips only a leading argument", () => {
        const arg = invalidArgument("components[0]", '"main" is not offered: components[0]: see the Release');
        assert.equal(arg.argument, "components[0]");
        assert.equal(arg.problem, '"main" is not offered: components[0]: see the Release');
        // Re-framed under another name, the inner mention of the argument stays.
        assert.equal(problemOf(arg, "components[0]"), '"main" is not offered: components[0]: see the Release');
        const parse = parseError(12, 'duplicate field "Package"');
        assert.deepEqual(
            [parse.code, parse.line, parse.problem, parse.message],
            ["ERR_PARSE", 12, 'duplicate field "Package"', 'line 12: duplicate field "Package"'],
        );
        assert.equal(problemOf(new Error("signing.privateKey: not armored"), "signing.privateKey"), "not armored");
        assert.equal(problemOf(new Error("other: x"), "signing.privateKey"), "other: x");
    });
});
