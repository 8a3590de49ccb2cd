/**
 * The lock a resource resolves while the program runs, pinned in an optional lock file, and how
 * a failure to resolve it reaches the user: once, as an error that names the resource and the
 * argument, before the engine can act on the program (docs/ARCHITECTURE.md, decisions 2 and 3).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { type ParseError, parseTree, printParseErrorCode } from "jsonc-parser";
import { writeFileAtomic } from "../provider/store/atomic";
import { canonicalJson } from "../provider/store/canonical";

/** SHA256 of the inputs a lock is resolved from, in canonical JSON. */
export function inputsDigest(inputs: unknown): string {
    return createHash("sha256").update(canonicalJson(inputs)).digest("hex");
}

export interface PinnedLockOptions<L> {
    /** Resource name, for messages. */
    name: string;
    /** The lock file, if the program pins one. */
    file?: string;
    /** Digest of the inputs (`inputsDigest`): a lock file resolved from others is not used. */
    inputs: string;
    /** The lock's field in the file ("packages", "images"). */
    field: string;
    /** Other fields written beside it, for people reading the file. */
    extra?: Record<string, unknown>;
    resolve: () => Promise<L>;
}

/**
 * The lock from the lock file when it was resolved from the same inputs; else resolved, and
 * written to the file by an update (a preview writes nothing).
 */
export async function pinnedLock<L>(opts: PinnedLockOptions<L>): Promise<L> {
    const file = opts.file ? path.resolve(opts.file) : undefined;
    if (file && fs.existsSync(file)) {
        const saved = readLockFile(file, opts.file ?? file);
        if (saved.inputs === opts.inputs && saved[opts.field] !== undefined) {
            return saved[opts.field] as L;
        }
        pulumi.log.info(`${opts.name}: ${opts.file} was resolved from other inputs; resolving again`);
    }
    const lock = await opts.resolve();
    if (file && !pulumi.runtime.isDryRun()) {
        const content = { version: LOCK_FILE_VERSION, inputs: opts.inputs, ...opts.extra, [opts.field]: lock };
        writeFileAtomic(file, `${JSON.stringify(content, null, 2)}\n`);
    }
    return lock;
}

/** The lock file format this version writes and reads. */
export const LOCK_FILE_VERSION = 1;

/** `line L, column C` of a character offset in `text` (both 1-based). */
function lineOf(text: string, offset: number): { line: number; column: number } {
    const before = text.slice(0, offset).split("\n");
    return { line: before.length, column: before[before.length - 1].length + 1 };
}

/**
 * A lock file's content. Bad JSON is an error naming the file and the line; a file of another
 * format version, or one that is not an object, is refused rather than guessed at.
 */
export function readLockFile(file: string, shown: string): Record<string, unknown> {
    const text = fs.readFileSync(file, "utf8");
    const refuse = (problem: string) =>
        Object.assign(new Error(`lockFile: ${shown} ${problem}: fix or remove it`), { argument: "lockFile" });
    let saved: unknown;
    try {
        saved = JSON.parse(text);
    } catch {
        // JSON.parse names a character offset at best; the line and column are what an editor
        // goes to, and jsonc-parser (strict options: no comments, no trailing commas) finds them.
        const errors: ParseError[] = [];
        parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
        const first = errors[0];
        const where = lineOf(text, first?.offset ?? text.length);
        const reason = first ? `: ${printParseErrorCode(first.error)}` : "";
        throw refuse(`is not valid JSON at line ${where.line}, column ${where.column}${reason}`);
    }
    if (typeof saved !== "object" || saved === null || Array.isArray(saved)) {
        throw refuse("is not a lock file (not a JSON object)");
    }
    const version = (saved as { version?: unknown }).version;
    if (version !== LOCK_FILE_VERSION) {
        throw refuse(
            `has format version ${JSON.stringify(version)}; this version of pulumi-airgap reads version ${LOCK_FILE_VERSION}`,
        );
    }
    return saved as Record<string, unknown>;
}

/**
 * `Type "name": argument: problem`. An engine error that names its argument (`argument`, and a
 * message starting with it) keeps its words; one that does not is put under `fallback`.
 */
export function describeProgramError(type: string, name: string, err: unknown, fallback: string): string {
    const message = err instanceof Error ? err.message : String(err);
    const argument = (err as { argument?: unknown } | undefined)?.argument;
    const named = typeof argument === "string" && argument !== "" && message.startsWith(argument);
    return `${type} "${name}": ${named ? message : `${fallback}: ${message}`}`;
}

/**
 * An error found while the program runs, shown once as its message alone (no stack trace, no
 * "unhandled exception"), which names the resource itself. `code` and `argument` are the
 * engine error's, for callers that tell errors apart.
 *
 * It is a RunError rather than a ResourceError on the resource: the runtime logs a
 * ResourceError against the resource's URN, which a resource whose inputs failed never gets,
 * and the message is then lost. The runtime also prefixes an input's rejection with
 * `error serializing property "<name>"` (on the same error object, so it can tell one failure
 * from many); the message here already names the argument in the user's terms and keeps its
 * own text.
 *
 * It carries no stack and no `cause`: the runtime inspects every uncaught error with colours,
 * and Node 20's inspector loops until it runs out of string length on a stack line that goes
 * through `node_modules/@pulumi/output.ts` (as every error from inside an apply does), burning
 * some 40 s of CPU and gigabytes of memory before the program can exit.
 */
export class ProgramInputError extends pulumi.RunError {
    declare public readonly code?: string;
    declare public readonly argument?: string;

    constructor(message: string, from?: unknown) {
        super(message);
        const fields = (from ?? {}) as { code?: unknown; argument?: unknown };
        const define = (key: string, value: unknown, enumerable = false) =>
            Object.defineProperty(this, key, { value, enumerable, configurable: true, writable: false });
        define("name", "ProgramInputError");
        define("stack", `ProgramInputError: ${message}`);
        if (typeof fields.code === "string") {
            define("code", fields.code, true);
        }
        if (typeof fields.argument === "string") {
            define("argument", fields.argument, true);
        }
        Object.defineProperty(this, "message", {
            get: () => message,
            set: () => {
                // see the class comment: the runtime's prefix is dropped
            },
            enumerable: false,
            configurable: true,
        });
    }
}

/** Wraps the resolution of a resource's lock: a failure becomes one ProgramInputError. */
export function resolvingInput<T>(type: string, name: string, fallback: string, resolve: () => Promise<T>): Promise<T> {
    return resolve().catch((err: unknown) => {
        throw new ProgramInputError(describeProgramError(type, name, err, fallback), err);
    });
}
