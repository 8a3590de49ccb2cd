/**
 * Errors raised by the engines.
 *
 * Callers MUST recognise an error by its `code`, never with `instanceof`: dynamic providers are
 * serialized and may load a second copy of this module, so class identity is not reliable.
 */

/** Stable codes for errors a caller may need to tell apart. */
export type AirgapErrorCode =
    /** An argument is missing, malformed or out of range. `argument` names it. */
    | "ERR_INVALID_ARGUMENT"
    /** A signature or hash did not verify. */
    | "ERR_VERIFICATION"
    /** Something the caller asked for does not exist upstream. */
    | "ERR_NOT_FOUND"
    /** A registry or server refused the credentials given, or asked for some and none were given. */
    | "ERR_AUTH"
    /** A network request failed after retries. */
    | "ERR_NETWORK"
    /** A query or file could not be parsed. */
    | "ERR_PARSE"
    /** A dependency could not be satisfied. */
    | "ERR_UNSATISFIABLE"
    /** A filesystem operation failed. */
    | "ERR_IO"
    /** A body, file, list or decompressed index is larger than the limit set for it; nothing was kept. */
    | "ERR_TOO_LARGE"
    /**
     * The place is already managed, or held, by something else (another resource, another run):
     * nothing was changed, and nothing of the other's was touched.
     */
    | "ERR_CONFLICT";

export interface AirgapErrorOptions {
    /** The argument (dotted path, e.g. `registries[0].source`) that the error is about. */
    argument?: string;
    /** The message without the argument or line it starts with, for a caller that re-frames it. */
    problem?: string;
    /** The line (1-based) of a parsed text the error is about. */
    line?: number;
    cause?: unknown;
}

export class AirgapError extends Error {
    public readonly code: AirgapErrorCode;
    public readonly argument?: string;
    public readonly problem?: string;
    public readonly line?: number;

    constructor(code: AirgapErrorCode, message: string, options: AirgapErrorOptions = {}) {
        super(message, options.cause === undefined ? undefined : { cause: options.cause });
        this.name = "AirgapError";
        this.code = code;
        this.argument = options.argument;
        this.problem = options.problem;
        this.line = options.line;
    }
}

/** An error about an argument: the message starts with the argument's name. */
export function invalidArgument(argument: string, problem: string, cause?: unknown): AirgapError {
    return new AirgapError("ERR_INVALID_ARGUMENT", `${argument}: ${problem}`, { argument, problem, cause });
}

/** An error about line `line` of a parsed text: the message starts with "line N: ". */
export function parseError(line: number, problem: string, cause?: unknown): AirgapError {
    return new AirgapError("ERR_PARSE", `line ${line}: ${problem}`, { line, problem, cause });
}

/** What an error says without the argument it starts with (its `problem`, when it has one). */
export function problemOf(err: unknown, argument: string): string {
    if (isAirgapError(err) && err.argument === argument && err.problem !== undefined) {
        return err.problem;
    }
    const message = err instanceof Error ? err.message : String(err);
    return message.startsWith(`${argument}: `) ? message.slice(argument.length + 2) : message;
}

/** Credentials missing or refused; the argument is `credentials`. */
export function authError(problem: string): AirgapError {
    return new AirgapError("ERR_AUTH", problem, { argument: "credentials" });
}

const CODES: ReadonlySet<string> = new Set<AirgapErrorCode>([
    "ERR_INVALID_ARGUMENT",
    "ERR_VERIFICATION",
    "ERR_NOT_FOUND",
    "ERR_AUTH",
    "ERR_NETWORK",
    "ERR_PARSE",
    "ERR_UNSATISFIABLE",
    "ERR_IO",
    "ERR_TOO_LARGE",
    "ERR_CONFLICT",
]);

/**
 * True when `err` is an engine error: an Error carrying one of this project's codes. Works across
 * copies of this module and for subclasses (which have names of their own); Node's own codes
 * (`ENOENT`, `ERR_STREAM_PREMATURE_CLOSE`, ...) are not ours.
 */
export function isAirgapError(err: unknown): err is AirgapError {
    return err instanceof Error && CODES.has((err as { code?: unknown }).code as string);
}

/** True when `err` carries the given code (works across copies of this module). */
export function hasCode(err: unknown, code: AirgapErrorCode): boolean {
    return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}

/** One thing wrong with the inputs: the argument (dotted path) and what is wrong with it. */
export interface Problem {
    /** Dotted path of the argument, e.g. `registries[0].mirrors[1]`. */
    argument: string;
    problem: string;
    /** The file and line the value came from, where it was read from one. */
    file?: string;
    line?: number;
}

/** Throws one ERR_INVALID_ARGUMENT error listing every problem (its `argument` is the first's). */
export function assertNoProblems(problems: readonly Problem[]): void {
    if (problems.length > 0) {
        throw new AirgapError("ERR_INVALID_ARGUMENT", problems.map((p) => `${p.argument}: ${p.problem}`).join("; "), {
            argument: problems[0]!.argument,
        });
    }
}
