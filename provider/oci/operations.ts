/**
 * ImageMirror's provider operations. `read` and `delete` also run the code stored in the state of
 * older versions: they rely only on `pushed`, `images`, `mirrored`, `auth` and `tls`.
 */
import { checkWith, containsUnknown, diffInputs, type Operations } from "../dynamic/contract";
import { assertNoProblems, type Problem, problemOf } from "../errors";
import { parseDockerConfig } from "./auth";
import type { CopyProgress } from "./copy";
import { parsePlatform } from "./manifest";
import {
    IMAGE_DEFAULTS,
    type ImageMirrorSpec,
    type ImageMirrorState,
    isLockDigest,
    parseMirrorSource,
    parseMirrorTarget,
    placeOfDestination,
    readImages,
    registryHostPattern,
    removeImages,
    sourceReference,
    syncImages,
} from "./mirror";
import { withRegistry } from "./reference";
import { formatProgress } from "../progress";

const specKeys = [
    "images",
    "destination",
    "source",
    "repositoryPath",
    "platforms",
    "auth",
    "tls",
    "concurrency",
    "name",
] as const;

/** Every problem with the inputs, each naming its argument. */
export async function validateImageMirrorSpec(spec: ImageMirrorSpec): Promise<Problem[]> {
    const failures: Problem[] = [];
    const fail = (argument: string, problem: string) => failures.push({ argument, problem });
    const reasonOf = problemOf;

    let registry: string | undefined;
    try {
        const target = parseMirrorTarget(spec.destination, "destination");
        registry = target.kind === "registry" ? target.registry : undefined;
    } catch (err) {
        fail("destination", reasonOf(err, "destination"));
    }
    try {
        parseMirrorSource(spec.source);
    } catch (err) {
        fail("source", reasonOf(err, "source"));
    }
    const mode = spec.repositoryPath ?? IMAGE_DEFAULTS.repositoryPath;
    if (mode !== "keep-registry" && mode !== "strip-registry") {
        fail("repositoryPath", `${JSON.stringify(mode)} must be "keep-registry" or "strip-registry"`);
    }
    const images = spec.images;
    if (typeof images !== "object" || images === null || Array.isArray(images) || Object.keys(images).length === 0) {
        fail("images", "must be the lock: a non-empty map of image reference to digest");
    } else {
        for (const [key, digest] of Object.entries(images)) {
            let ref: ReturnType<typeof sourceReference> | undefined;
            try {
                ref = sourceReference(key);
            } catch (err) {
                fail("images", (err as Error).message);
            }
            if (!isLockDigest(digest)) {
                fail("images", `${key}: ${JSON.stringify(digest)} is not a sha256 or sha512 digest`);
            }
            if (
                ref !== undefined &&
                registry !== undefined &&
                (mode === "keep-registry" || mode === "strip-registry")
            ) {
                try {
                    withRegistry(ref, registry, mode);
                } catch (err) {
                    fail("repositoryPath", `${key}: ${reasonOf(err, "mode")}`);
                }
            }
        }
    }
    if (spec.platforms !== undefined) {
        if (!Array.isArray(spec.platforms)) {
            fail("platforms", 'must be a list such as ["linux/amd64", "linux/arm64"]');
        } else {
            spec.platforms.forEach((p, i) => {
                try {
                    parsePlatform(String(p), `platforms[${i}]`);
                } catch (err) {
                    fail(`platforms[${i}]`, reasonOf(err, `platforms[${i}]`));
                }
            });
        }
    }
    if (spec.auth !== undefined) {
        try {
            if (typeof spec.auth !== "string") {
                throw new Error("must be the text of a docker config.json");
            }
            parseDockerConfig(spec.auth, "auth");
        } catch (err) {
            // The message never quotes the secret: the parser only names fields.
            fail(
                "auth",
                `${reasonOf(err, "auth")}; give a docker config.json / pull secret, e.g. {"auths": {"quay.io": {"auth": "<base64 user:password>"}}}`,
            );
        }
    }
    const tls = spec.tls;
    if (tls !== undefined) {
        if (typeof tls !== "object" || tls === null) {
            fail("tls", "must be an object { caCert?, insecureRegistries? }");
        } else {
            if (tls.caCert !== undefined && !/-----BEGIN CERTIFICATE-----/.test(String(tls.caCert))) {
                fail("tls.caCert", "must hold one or more PEM certificates (-----BEGIN CERTIFICATE-----)");
            }
            if (
                tls.insecureRegistries !== undefined &&
                (!Array.isArray(tls.insecureRegistries) ||
                    tls.insecureRegistries.some((r) => !registryHostPattern.test(String(r))))
            ) {
                fail("tls.insecureRegistries", 'must be a list of "host[:port]" such as "mirror.local:5000"');
            }
        }
    }
    if (spec.concurrency !== undefined && (!Number.isInteger(spec.concurrency) || spec.concurrency < 1)) {
        fail("concurrency", `must be a positive integer, got ${spec.concurrency}`);
    }
    return failures;
}

async function assertValid(spec: ImageMirrorSpec): Promise<void> {
    assertNoProblems(await validateImageMirrorSpec(spec));
}

/**
 * Progress lines (images, bytes, rate, time left) every `PROGRESS_INTERVAL_MS` and a last one with
 * the totals, on stderr: the Pulumi CLI shows them beside the resource.
 */
export function progressReporter(
    label: string,
    write: (line: string) => void = (line) => console.error(line),
): (p: CopyProgress) => void {
    return (p) => {
        const detail =
            `${p.blobs.copied} blobs copied, ${p.blobs.skipped} present` +
            (p.done ? "" : `, ${p.blobs.inFlight} in flight`) +
            (p.images.failed > 0 ? `, ${p.images.failed} images failed` : "");
        write(
            `[image ${label}] ${formatProgress({
                done: p.images.done,
                total: p.images.total,
                unit: "images",
                bytes: p.bytes,
                elapsedMs: p.elapsedMs,
                detail,
                final: p.done,
            })}`,
        );
    };
}

/** The destination as a place (`placeOfDestination`), or undefined while it is unknown. */
function placeIn(spec: Pick<ImageMirrorSpec, "destination">): string | undefined {
    return containsUnknown(spec.destination) ? undefined : placeOfDestination(spec.destination);
}

export const operations: Operations<ImageMirrorSpec, ImageMirrorState> = {
    /** The inputs' problems; valid inputs go on with the destination spelled as a place. */
    async check(olds, news) {
        const result = await checkWith(validateImageMirrorSpec)(olds, news);
        if (!containsUnknown(news) && result.failures.length === 0) {
            result.inputs = { ...news, destination: placeOfDestination(news.destination) };
        }
        return result;
    },

    async diff(_id, olds, news) {
        // One place however it is spelled (states written before check normalised it too): a
        // replacement is created before the old resource is deleted, and the old one's delete
        // would then remove what the new one just pushed.
        const replaces: string[] = [];
        const place = placeIn(news);
        if (place === undefined || placeIn(olds) !== place) {
            replaces.push("destination");
        }
        if (
            (olds.repositoryPath ?? IMAGE_DEFAULTS.repositoryPath) !==
            (news.repositoryPath ?? IMAGE_DEFAULTS.repositoryPath)
        ) {
            replaces.push("repositoryPath");
        }
        const samePlace = <T extends Pick<ImageMirrorSpec, "destination">>(s: T): T =>
            containsUnknown(s.destination) ? s : { ...s, destination: placeOfDestination(s.destination) };
        return diffInputs(samePlace(olds), samePlace(news), specKeys, replaces);
    },

    async create(inputs) {
        await assertValid(inputs);
        const state = await syncImages(inputs, { onProgress: progressReporter(inputs.destination) });
        return { id: inputs.destination, outs: state };
    },

    async read(id, props) {
        return { id, props: await readImages(props) };
    },

    async update(_id, olds, news) {
        await assertValid(news);
        return {
            outs: await syncImages(news, {
                previous: olds.pushed ?? [],
                onProgress: progressReporter(news.destination),
            }),
        };
    },

    async delete(_id, props) {
        await removeImages(props);
    },
};
