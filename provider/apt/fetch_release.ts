/** fetchRelease: the upstream InRelease (or Release + Release.gpg), verified with the given keys. */

import * as path from "node:path";
import * as fs from "node:fs";
import { AirgapError, hasCode, invalidArgument } from "../errors";
import { getOptionalBytes, type HttpOptions, joinUrl } from "../http/client";
import { sha256, writeFileAtomic } from "../store/atomic";
import { touch } from "../store/prune";
import { type VerificationKeys, verifyClearsigned, verifyDetached } from "../pgp/verify";
import { unsafePathReason } from "./control";
import { extractClearsigned, isReleaseExpired, parseRelease, type Release } from "./release";

export interface FetchReleaseOptions extends HttpOptions {
    /** Repository root, e.g. "http://archive.example/debian" (holds `dists/` and `pool/`). */
    readonly url: string;
    /** Suite or codename: the directory under `dists/`, e.g. "bookworm" or "bookworm-updates". */
    readonly distribution: string;
    /**
     * Keys that may sign the Release (see `loadPublicKeys`), or a function that loads them when
     * a signature has to be checked. Required unless `allowUnsigned`.
     */
    readonly keys?: VerificationKeys | (() => Promise<VerificationKeys>);
    /**
     * Remembers verifications in `dir`: the same signed bytes checked against the same keys
     * (`keysId` names the key material, e.g. a SHA256 of it) within the last 24 hours are not
     * checked again; the signed text is read back instead. Time-bound so that an expired or
     * revoked key stops being accepted within a day.
     */
    readonly verifiedMemo?: { readonly dir: string; readonly keysId: string };
    /**
     * Accept a repository that is not signed, or (when no `keys` are given) whose signature is
     * not checked. A signature present is still checked when `keys` are given. Defaults to false.
     */
    readonly allowUnsigned?: boolean;
    /** Accept a Release whose `Valid-Until` has passed. Defaults to false. */
    readonly allowExpired?: boolean;
    /** The time for `Valid-Until` and signature checks. Defaults to now. */
    readonly now?: Date;
    /**
     * The argument that chose the keys (e.g. "source.keyFingerprints"): a signature that does
     * not verify with them is an `ERR_VERIFICATION` naming it. Defaults to none.
     */
    readonly keysArgument?: string;
}

export interface FetchedRelease {
    /** Repository root, without a trailing slash. */
    readonly url: string;
    readonly distribution: string;
    /** `<url>/dists/<distribution>`. */
    readonly suiteUrl: string;
    readonly release: Release;
    /** The Release text that was parsed (the verified payload when signed). */
    readonly text: string;
    /** Which file it came from. */
    readonly from: "InRelease" | "Release";
    /** The key that verified it; undefined when it was accepted unverified (`allowUnsigned`). */
    readonly signedBy?: { readonly fingerprint: string; readonly keyId: string };
}

function checkDistribution(distribution: string): void {
    const unsafe = unsafePathReason(distribution);
    if (unsafe !== undefined) {
        throw invalidArgument(
            "distribution",
            `${JSON.stringify(distribution)} ${unsafe}; give a suite name such as "stable"`,
        );
    }
}

function checkUrl(url: string): string {
    let parsed: URL;
    try {
        parsed = new URL(url);
    } catch {
        throw invalidArgument("url", `${JSON.stringify(url)} is not an absolute URL`);
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
        throw invalidArgument("url", `${JSON.stringify(url)} must be http:// or https://`);
    }
    return url.replace(/\/+$/, "");
}

function keysOf(keys: VerificationKeys | (() => Promise<VerificationKeys>)): Promise<VerificationKeys> {
    return typeof keys === "function" ? keys() : Promise.resolve(keys);
}

/** `verify()`, its verification failure named after `keysArgument` when there is one. */
async function verifying<T>(keysArgument: string | undefined, verify: () => Promise<T>): Promise<T> {
    try {
        return await verify();
    } catch (err) {
        if (keysArgument === undefined || !hasCode(err, "ERR_VERIFICATION") || (err as AirgapError).argument) {
            throw err;
        }
        throw new AirgapError("ERR_VERIFICATION", `${keysArgument}: ${(err as Error).message}`, {
            argument: keysArgument,
            cause: err,
        });
    }
}

const VERIFIED_FOR_MS = 24 * 60 * 60 * 1000;

interface RememberedVerification {
    verifiedAt: number;
    payload: string;
    fingerprint: string;
    keyId: string;
}

/**
 * `verify()`, or what it answered for the same bytes and keys within the last 24 hours (see
 * `FetchReleaseOptions.verifiedMemo`). Only successful verifications are remembered.
 */
async function rememberedVerification(
    options: FetchReleaseOptions,
    signed: readonly Buffer[],
    verify: () => Promise<{ payload: string; fingerprint: string; keyId: string }>,
): Promise<{ payload: string; fingerprint: string; keyId: string }> {
    const memo = options.verifiedMemo;
    if (memo === undefined) {
        return verify();
    }
    const key = sha256([memo.keysId, ...signed.map((part) => sha256(part))].join("\n"));
    const file = path.join(memo.dir, "verified", `${key}.json`);
    const now = (options.now ?? new Date()).getTime();
    try {
        const known = JSON.parse(fs.readFileSync(file, "utf8")) as RememberedVerification;
        if (
            typeof known.payload === "string" &&
            typeof known.fingerprint === "string" &&
            typeof known.keyId === "string" &&
            typeof known.verifiedAt === "number" &&
            known.verifiedAt <= now &&
            now - known.verifiedAt < VERIFIED_FOR_MS
        ) {
            touch(file);
            return known;
        }
    } catch {
        // Not remembered (or unreadable): verify.
    }
    const verified = await verify();
    const entry: RememberedVerification = {
        verifiedAt: now,
        payload: verified.payload,
        fingerprint: verified.fingerprint,
        keyId: verified.keyId,
    };
    try {
        writeFileAtomic(file, JSON.stringify(entry));
    } catch {
        // A memo that cannot be written costs the next run a verification, nothing else.
    }
    return verified;
}

/**
 * Fetches and verifies the Release of `distribution`: `InRelease` first, else `Release` with
 * `Release.gpg`. Throws `ERR_NOT_FOUND` (naming URL and distribution) when neither exists,
 * `ERR_VERIFICATION` when the signature does not verify with `keys` or the repository is
 * unsigned without `allowUnsigned`, `ERR_INVALID_ARGUMENT` for missing keys.
 */
export async function fetchRelease(options: FetchReleaseOptions): Promise<FetchedRelease> {
    const url = checkUrl(options.url);
    const { distribution, keys } = options;
    checkDistribution(distribution);
    const allowUnsigned = options.allowUnsigned ?? false;
    if (keys === undefined && !allowUnsigned) {
        throw invalidArgument(
            "keys",
            "no key to verify the Release with: give the archive's public key, or set allowUnsigned",
        );
    }
    const suiteUrl = joinUrl(url, `dists/${distribution}`);
    const http: HttpOptions = options;
    const small = { ...http, maxBytes: 32 << 20 };

    let text: string;
    let from: FetchedRelease["from"];
    let signedBy: FetchedRelease["signedBy"];
    const inReleaseUrl = `${suiteUrl}/InRelease`;
    const inRelease = await getOptionalBytes(inReleaseUrl, small);
    if (inRelease !== undefined) {
        from = "InRelease";
        const content = inRelease.toString("utf8");
        if (keys !== undefined) {
            const verified = await rememberedVerification(options, [inRelease], () =>
                verifying(options.keysArgument, async () =>
                    verifyClearsigned(content, await keysOf(keys), {
                        what: `InRelease from ${inReleaseUrl}`,
                        date: options.now,
                    }),
                ),
            );
            text = verified.payload;
            signedBy = { fingerprint: verified.fingerprint, keyId: verified.keyId };
        } else {
            text = content.trimStart().startsWith("-----BEGIN PGP SIGNED MESSAGE-----")
                ? extractClearsigned(content).payload
                : content;
        }
    } else {
        from = "Release";
        const releaseUrl = `${suiteUrl}/Release`;
        const release = await getOptionalBytes(releaseUrl, small);
        if (release === undefined) {
            throw new AirgapError(
                "ERR_NOT_FOUND",
                `distribution ${JSON.stringify(distribution)} not found at ${url}: neither ${inReleaseUrl} nor ${releaseUrl} exists`,
            );
        }
        const signatureUrl = `${suiteUrl}/Release.gpg`;
        const signature = await getOptionalBytes(signatureUrl, small);
        if (signature === undefined && !allowUnsigned) {
            throw new AirgapError(
                "ERR_VERIFICATION",
                `${releaseUrl} is not signed (no InRelease, no Release.gpg): set allowUnsigned to mirror it anyway`,
            );
        }
        if (signature !== undefined && keys !== undefined) {
            const verified = await rememberedVerification(options, [release, signature], () =>
                verifying(options.keysArgument, async () =>
                    verifyDetached(release, signature, await keysOf(keys), {
                        what: `Release from ${releaseUrl} with ${signatureUrl}`,
                        date: options.now,
                    }),
                ),
            );
            signedBy = { fingerprint: verified.fingerprint, keyId: verified.keyId };
        }
        text = release.toString("utf8");
    }

    let release: Release;
    try {
        release = parseRelease(text);
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${from} from ${suiteUrl}: ${(cause as Error).message}`, { cause });
    }
    // A mirror in between could serve another suite's (or another year's) Release, signed by the
    // same archive key: it must name the suite asked for (its Suite or its Codename).
    const names = [release.suite, release.codename].filter((n): n is string => n !== undefined && n !== "");
    if (names.length > 0 && !names.includes(distribution)) {
        throw new AirgapError(
            "ERR_VERIFICATION",
            `${from} from ${suiteUrl} is the Release of ${names.map((n) => JSON.stringify(n)).join(" / ")}, not of ${JSON.stringify(distribution)}: the server answers for another suite; check source.url and source.distribution`,
            { argument: "source.distribution" },
        );
    }
    if (!(options.allowExpired ?? false) && isReleaseExpired(release, options.now ?? new Date())) {
        throw new AirgapError(
            "ERR_VERIFICATION",
            `${from} from ${suiteUrl} expired on ${release.validUntil?.toISOString()} (Valid-Until): the mirror upstream is stale; set allowExpired to use it anyway`,
        );
    }
    return { url, distribution, suiteUrl, release, text, from, signedBy };
}
