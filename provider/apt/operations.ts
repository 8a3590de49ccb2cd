/**
 * AptMirror's provider operations. `read` and `delete` also run the code stored in the state of
 * older versions: they rely only on `publish`, `source` and `publicKey`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { checkWith, containsUnknown, diffInputs, type Operations } from "../dynamic/contract";
import { canonicalJson } from "../store/canonical";
import { placeOf } from "../store/place";
import { assertNoProblems, invalidArgument, type Problem, problemOf } from "../errors";
import { loadSigningKey } from "../pgp/sign";
import {
    APT_DEFAULTS,
    type AptLock,
    type AptMirrorSpec,
    type AptMirrorState,
    type AptPublishSpec,
    readMirror,
    removeMirror,
    stateDirProblem,
    type SyncOptions,
    syncMirror,
} from "./mirror";
import { aptProgressReporter, aptStepLog } from "./progress";
import { unsafePathReason } from "./control";
import { OPTIONAL_INDEX_KEYS, optionalIndexesProblems } from "./optional_indexes";
import { checkKeyUrl, downgradeProblem, normalizeFingerprints, validForMs } from "./trust";
import { lockDigest, parseLock } from "./lock_text";
import { favorSmallHeap } from "../heap";

/**
 * The inputs as the program passes them: the lock (`packages`, and `external`) as text, one
 * `name/arch version` line each (lock_text.ts); a map as older programs passed it is accepted.
 */
export type AptMirrorInputs = Omit<AptMirrorSpec, "packages" | "external"> & {
    packages: string | AptLock;
    external?: string | AptLock;
};

/**
 * The provider's state: the SHA-256 of the lock's text instead of the lock, which the state
 * already holds as the inputs. States of older versions hold the maps.
 */
export type AptMirrorOutputs = Omit<AptMirrorState, "packages" | "external"> & {
    packagesSha256?: string;
    externalSha256?: string;
    packages?: AptLock;
    external?: AptLock;
};

/** The lock inputs, each parsed (text or map); a problem names the argument. */
const LOCK_KEYS = ["packages", "external"] as const;

/** The spec the engine runs on: the lock inputs parsed into maps. Throws naming the argument. */
export function specOf(inputs: AptMirrorInputs): AptMirrorSpec {
    const spec = { ...inputs } as unknown as AptMirrorSpec;
    for (const key of LOCK_KEYS) {
        if (inputs[key] !== undefined) {
            try {
                spec[key] = parseLock(inputs[key]);
            } catch (err) {
                throw invalidArgument(key, (err as Error).message);
            }
        }
    }
    return spec;
}

/** The state the provider returns: the lock maps replaced by the digests of their text. */
export function outputsOf(state: AptMirrorState): AptMirrorOutputs {
    const { packages, external, ...rest } = state;
    return {
        ...rest,
        packagesSha256: lockDigest(packages),
        ...(external === undefined ? {} : { externalSha256: lockDigest(external) }),
    };
}

/** A state as `readMirror` and `removeMirror` take it (they read neither lock). */
function stateOf(outputs: AptMirrorOutputs): AptMirrorState {
    return { packages: {}, ...outputs } as AptMirrorState;
}

/** The lock digests of a state (new or older) or of inputs; undefined for a missing lock. */
function lockDigests(value: AptMirrorOutputs | AptMirrorInputs): Record<string, string | undefined> {
    const sums: Record<string, string | undefined> = {};
    const held = value as Record<string, unknown>;
    for (const key of LOCK_KEYS) {
        const sum = held[`${key}Sha256`];
        sums[key] = typeof sum === "string" ? sum : held[key] === undefined ? undefined : lockDigest(held[key]);
    }
    return sums;
}

// Compared as they are; the lock inputs (`packages`, and `external`: what other mirrors supply
// shows in preview, though this mirror copies none of it) are compared by digest.
const specKeys = ["source", "publish", "signing", "allowUnsigned", "concurrency"] as const;

const names = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;

/** Every problem with the inputs, each naming its argument. */
export async function validateAptMirrorSpec(inputs: AptMirrorInputs): Promise<Problem[]> {
    const failures: Problem[] = [];
    const fail = (argument: string, problem: string) => failures.push({ argument, problem });
    const spec = inputs as unknown as AptMirrorSpec;
    const { source, publish } = spec;
    if (typeof source?.url !== "string" || !/^https?:\/\/\S+$/.test(source.url)) {
        fail("source.url", `${JSON.stringify(source?.url)} must be an http:// or https:// URL`);
    }
    if (
        typeof source?.distribution !== "string" ||
        source.distribution === "" ||
        unsafePathReason(source.distribution)
    ) {
        fail("source.distribution", `${JSON.stringify(source?.distribution)} must be a suite name such as "bookworm"`);
    }
    for (const field of ["components", "architectures"] as const) {
        const list = source?.[field];
        if (
            list !== undefined &&
            (!Array.isArray(list) || list.length === 0 || list.some((x) => !names.test(String(x))))
        ) {
            fail(
                `source.${field}`,
                `must be a non-empty list of names, e.g. ${JSON.stringify(APT_DEFAULTS[field])} (the default)`,
            );
        }
    }
    if (!source?.key && !source?.keyUrl && !source?.keyring && !source?.allowUnsigned) {
        fail("source.key", "give the upstream's public key (key, keyUrl or keyring), or set allowUnsigned: true");
    }
    if (source?.keyring && !fs.existsSync(source.keyring)) {
        fail("source.keyring", `"${source.keyring}" does not exist`);
    }
    let pinned = false;
    if (source?.keyFingerprints !== undefined) {
        pinned = argumentProblem(fail, () => normalizeFingerprints(source.keyFingerprints));
    }
    if (source?.keyUrl) {
        argumentProblem(fail, () => checkKeyUrl(source.keyUrl, pinned));
    }
    if (typeof publish?.root !== "string" || !path.isAbsolute(publish.root)) {
        fail("publish.root", `${JSON.stringify(publish?.root)} must be an absolute path`);
    } else if (!fs.existsSync(publish.root) || !fs.statSync(publish.root).isDirectory()) {
        fail("publish.root", `"${publish.root}" does not exist or is not a directory`);
    } else if (
        publish.stateDir !== undefined &&
        (typeof publish.stateDir !== "string" || !path.isAbsolute(publish.stateDir))
    ) {
        fail("publish.stateDir", `${JSON.stringify(publish.stateDir)} must be an absolute path`);
    } else {
        const problem = stateDirProblem(publish);
        if (problem !== undefined) {
            fail("publish.stateDir", problem);
        }
    }
    const prefix = publish?.prefix;
    if (
        typeof prefix !== "string" ||
        prefix === "" ||
        prefix.split("/").some((part) => !names.test(part) || part === "..") ||
        prefix.startsWith(".")
    ) {
        fail(
            "publish.prefix",
            `${JSON.stringify(prefix)} must be a relative path of names such as "debian" or "mirrors/ubuntu"`,
        );
    }
    if (publish?.distribution !== undefined && !names.test(publish.distribution)) {
        fail("publish.distribution", `${JSON.stringify(publish.distribution)} must be a suite name`);
    }
    if (publish?.validFor !== undefined) {
        argumentProblem(fail, () => validForMs(publish.validFor));
    }
    if (spec.allowDowngrade !== undefined && typeof spec.allowDowngrade !== "boolean") {
        fail("allowDowngrade", `must be true or false, got ${JSON.stringify(spec.allowDowngrade)}`);
    }
    for (const key of LOCK_KEYS) {
        if (key === "packages" || inputs[key] !== undefined) {
            try {
                parseLock(inputs[key]);
            } catch (err) {
                fail(key, (err as Error).message);
            }
        }
    }
    if (spec.concurrency !== undefined && (!Number.isInteger(spec.concurrency) || spec.concurrency < 1)) {
        fail("concurrency", `must be a positive integer, got ${spec.concurrency}`);
    }
    failures.push(...optionalIndexesProblems(spec));
    if (spec.signing === undefined) {
        if (!spec.allowUnsigned) {
            fail("signing", "give signing.privateKey to sign the published Release, or set allowUnsigned: true");
        }
    } else {
        try {
            await loadSigningKey(spec.signing, "signing");
        } catch (err) {
            const argument = (err as { argument?: string }).argument ?? "signing.privateKey";
            fail(argument, problemOf(err, argument));
        }
    }
    return failures;
}

/** Runs `check`; an error naming its argument becomes a problem. True when it passed. */
function argumentProblem(fail: (argument: string, problem: string) => void, check: () => unknown): boolean {
    try {
        check();
        return true;
    } catch (err) {
        const argument = (err as { argument?: string }).argument ?? "source";
        fail(argument, problemOf(err, argument));
        return false;
    }
}

async function assertValid(inputs: AptMirrorInputs): Promise<AptMirrorSpec> {
    assertNoProblems(await validateAptMirrorSpec(inputs));
    return specOf(inputs);
}

/** What the provider passes `syncMirror` besides the spec: progress and step lines on stderr. */
export function providerSyncOptions(prefix: string): SyncOptions {
    return { onProgress: aptProgressReporter(prefix), log: aptStepLog(prefix) };
}

/** The publish location spelled one way (the root and the state directory, as `placeOf`). */
function placed(publish: AptPublishSpec): AptPublishSpec {
    return {
        ...publish,
        root: placeOf(publish.root),
        ...(publish.stateDir === undefined ? {} : { stateDir: placeOf(publish.stateDir) }),
    };
}

export const operations: Operations<AptMirrorInputs, AptMirrorOutputs> = {
    /** The inputs' problems, and an upstream Release older than the last one synced (a replay). */
    async check(olds, news) {
        const result = await checkWith(validateAptMirrorSpec)(olds, news);
        if (!containsUnknown(news) && result.failures.length === 0) {
            result.inputs = { ...news, publish: placed(news.publish) };
        }
        const replayed = containsUnknown(news) ? undefined : downgradeProblem(olds, news);
        if (replayed !== undefined) {
            result.failures.push({ property: "allowDowngrade", reason: replayed });
        }
        return result;
    },

    async diff(_id, olds, news) {
        // One place however it is spelled: a replacement is created before the old resource is
        // deleted, and the old one's delete would unpublish what the new one just published.
        const where = (s: { publish: AptPublishSpec }) =>
            containsUnknown(s.publish) ? undefined : canonicalJson([placeOf(s.publish.root), s.publish.prefix]);
        const replaces = where(news) === undefined || where(olds) !== where(news) ? ["publish"] : [];
        const samePlace = { ...news, publish: containsUnknown(news.publish) ? news.publish : placed(news.publish) };
        if (containsUnknown(news)) {
            return { changes: true, replaces };
        }
        // A lock that does not parse is reported by check; here it only differs.
        const digests = (v: AptMirrorOutputs | AptMirrorInputs) => {
            try {
                return canonicalJson(lockDigests(v));
            } catch {
                return undefined;
            }
        };
        const lockChanged = digests(news) === undefined || digests(olds) !== digests(news);
        const rest = diffInputs(
            { ...olds, publish: placed(olds.publish) } as unknown as AptMirrorInputs & { drift: string[] },
            samePlace,
            [...specKeys, ...OPTIONAL_INDEX_KEYS],
            replaces,
        );
        return { ...rest, changes: rest.changes || lockChanged };
    },

    async create(inputs) {
        const spec = await assertValid(inputs);
        favorSmallHeap();
        const state = await syncMirror(spec, providerSyncOptions(spec.publish.prefix));
        return { id: state.publishedPath, outs: outputsOf(state) };
    },

    async read(id, props) {
        favorSmallHeap();
        return { id, props: outputsOf(await readMirror(stateOf(props))) };
    },

    async update(_id, _olds, news) {
        const spec = await assertValid(news);
        favorSmallHeap();
        return { outs: outputsOf(await syncMirror(spec, providerSyncOptions(spec.publish.prefix))) };
    },

    async delete(_id, props) {
        await removeMirror(stateOf(props));
    },
};
