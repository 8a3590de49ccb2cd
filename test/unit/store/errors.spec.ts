import assert from "node:assert/strict";
import { UnsatisfiableDependenciesError } from "../../../provider/apt/resolver";
import { AirgapError, isAirgapError } from "../../../provider/errors";

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
});
