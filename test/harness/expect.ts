import assert from "node:assert/strict";
import { hasCode } from "../../provider/errors";

/** An `assert.rejects` check: the error carries `code` and, when given, a message matching `message`. */
export function withCode(code: string, message?: RegExp) {
    return (err: Error) => {
        assert.ok(
            hasCode(err, code as never),
            `expected ${code}, got ${(err as { code?: string }).code}: ${err.message}`,
        );
        if (message !== undefined) {
            assert.match(err.message, message);
        }
        return true;
    };
}

/** Awaits the rejection of `promise` with `code` and a message matching `message`; returns the error. */
export async function expectCode(promise: Promise<unknown>, code: string, message: RegExp): Promise<Error> {
    let caught: Error | undefined;
    await assert.rejects(promise, (err: Error) => {
        caught = err;
        return withCode(code, message)(err);
    });
    return caught as Error;
}
