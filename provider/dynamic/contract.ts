/**
 * The shape of a dynamic provider's operations, in plain TypeScript. Each resource's engine
 * module exports these functions; the Pulumi-facing provider object forwards to them.
 */
import type { Problem } from "../errors";
import { canonicalJson } from "../store/canonical";

/** A problem as Pulumi's `check` reports it, on a property. */
export interface CheckFailure {
    property: string;
    reason: string;
}

export interface CheckResult<T> {
    inputs: T;
    failures: CheckFailure[];
}

export interface DiffResult {
    changes: boolean;
    replaces?: string[];
    deleteBeforeReplace?: boolean;
}

export interface CreateResult<O> {
    id: string;
    outs: O;
}

export interface ReadResult<O> {
    id: string;
    props: O;
}

export interface UpdateResult<O> {
    outs: O;
}

export interface Operations<I, O> {
    check(olds: Partial<I>, news: I): Promise<CheckResult<I>>;
    diff(id: string, olds: O, news: I): Promise<DiffResult>;
    create(inputs: I): Promise<CreateResult<O>>;
    read(id: string, props: O): Promise<ReadResult<O>>;
    update(id: string, olds: O, news: I): Promise<UpdateResult<O>>;
    delete(id: string, props: O): Promise<void>;
}

/** The engine's placeholder for a value not known during preview. */
export const unknownValue = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function containsUnknown(value: unknown): boolean {
    return JSON.stringify(value ?? null).includes(unknownValue);
}

/**
 * The `check` every resource uses: values unknown during preview are left to the next run;
 * known inputs are validated and every problem is reported on its property.
 */
export function checkWith<I>(validate: (inputs: I) => Promise<Problem[]>) {
    return async (_olds: Partial<I>, news: I): Promise<CheckResult<I>> =>
        containsUnknown(news)
            ? { inputs: news, failures: [] }
            : {
                  inputs: news,
                  failures: (await validate(news)).map((p) => ({ property: p.argument, reason: p.problem })),
              };
}

/** The defined values of `keys` in `value`: a resource's inputs out of its state. */
export function pickDefined<T extends object, K extends keyof T>(value: T, keys: readonly K[]): Pick<T, K> {
    const out: Partial<Pick<T, K>> = {};
    for (const k of keys) {
        if (value[k] !== undefined) {
            out[k] = value[k];
        }
    }
    return out as Pick<T, K>;
}

/**
 * The diff of a resource whose `read` reports drift: a change when an input key differs, when the
 * last refresh found drift, or when `replaces` is not empty; always a change while inputs are unknown.
 */
export function diffInputs<T extends object>(
    olds: T & { drift?: readonly string[] },
    news: T,
    keys: readonly (keyof T)[],
    replaces: string[],
): DiffResult {
    if (containsUnknown(news)) {
        return { changes: true, replaces };
    }
    const changed = canonicalJson(pickDefined(olds, keys)) !== canonicalJson(pickDefined(news, keys));
    return { changes: changed || (olds.drift ?? []).length > 0 || replaces.length > 0, replaces };
}
