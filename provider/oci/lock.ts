/**
 * ImageMirror's lock, resolved while the program runs (preview too): each image's digest at its
 * registry, or the images a layout or archive source holds.
 */

import { createReadStream, promises as fsp } from "node:fs";
import { tarStream } from "./tar";
import { AirgapError, invalidArgument, isAirgapError } from "../errors";
import { readBodyCapped } from "../http/body";
import {
    findByRefName,
    type LayoutIndex,
    MAX_LAYOUT_INDEX_SIZE,
    OCI_INDEX_FILE,
    parseLayoutIndex,
    readLayout,
} from "./layout";
import { parseDockerConfig } from "./auth";
import { resolveTags } from "./resolve";
import type { RegistryOptions } from "./registry_transport";
import type { ImageLock, ImageMirrorSpec } from "./mirror_types";
import { layoutRefName, parseMirrorSource, registryHostKey, sourceReference } from "./naming";

/** Registry options per domain from `auth` and `tls`. */
/** Overrides of registry options (e.g. retries, or a dispatcher in tests): for all registries, or per domain. */
export type RegistryOverrides = Partial<RegistryOptions> | ((domain: string) => Partial<RegistryOptions>);

export function registryOptionsFor(
    spec: Pick<ImageMirrorSpec, "auth" | "tls">,
    overrides: RegistryOverrides = {},
): (domain: string) => RegistryOptions {
    const dockerConfig = spec.auth === undefined || spec.auth === "" ? undefined : parseDockerConfig(spec.auth, "auth");
    const insecure = new Set((spec.tls?.insecureRegistries ?? []).map(registryHostKey));
    return (domain) => ({
        ...(dockerConfig === undefined ? {} : { dockerConfig }),
        ...(spec.tls?.caCert === undefined ? {} : { caPem: spec.tls.caCert }),
        ...(insecure.has(registryHostKey(domain)) ? { insecure: true } : {}),
        ...(typeof overrides === "function" ? overrides(domain) : overrides),
    });
}

export interface ResolveImageLockOptions extends Pick<ImageMirrorSpec, "source" | "auth" | "tls"> {
    /** Source references, as the user wrote them. */
    images: string[];
    /** Overrides for every registry request (e.g. retries in tests). */
    registry?: RegistryOverrides;
}

/**
 * Resolves each image to the digest of its manifest or index: at the source registry (the exact
 * bytes served), or in the source layout / archive by reference name. Errors name the reference.
 */
export async function resolveImageLock(options: ResolveImageLockOptions): Promise<ImageLock> {
    const { images } = options;
    if (!Array.isArray(images) || images.length === 0) {
        throw invalidArgument("images", 'list at least one image reference, e.g. "quay.io/org/app:1.2"');
    }
    const refs = images.map((s, i) => {
        try {
            return sourceReference(s);
        } catch (cause) {
            throw invalidArgument(`images[${i}]`, (cause as Error).message, cause);
        }
    });
    const source = parseMirrorSource(options.source);
    if (source === undefined) {
        const digests = await resolveTags(images, { registry: registryOptionsFor(options, options.registry) });
        return sortedLock(images.map((s) => [s, digests.get(s)!]));
    }
    const index = source.kind === "oci" ? await readLayout(source.path) : await readArchiveIndex(source.path);
    const missing: string[] = [];
    const entries = images.map((s, i): [string, string] => {
        const ref = refs[i]!;
        const found = findByRefName(index, layoutRefName(ref));
        const digest = found[found.length - 1]?.digest;
        if (digest === undefined) {
            missing.push(`${s} (named "${layoutRefName(ref)}")`);
            return [s, ""];
        }
        if (ref.digest !== undefined && ref.digest !== digest) {
            throw new AirgapError(
                "ERR_VERIFICATION",
                `images: ${s} is pinned to ${ref.digest}, but ${source.kind}:${source.path} holds ${digest} under "${layoutRefName(ref)}"`,
                { argument: "images" },
            );
        }
        return [s, digest];
    });
    if (missing.length > 0) {
        throw new AirgapError(
            "ERR_NOT_FOUND",
            `images: ${source.kind}:${source.path} does not hold ${missing.join(", ")}`,
            { argument: "images" },
        );
    }
    return sortedLock(entries);
}

export function sortedLock(entries: [string, string][]): ImageLock {
    return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `index.json` of an OCI archive, read by streaming the tar without extracting blobs. */
export async function readArchiveIndex(file: string): Promise<LayoutIndex> {
    const where = `OCI archive ${file}`;
    try {
        await fsp.access(file);
    } catch (cause) {
        throw new AirgapError("ERR_NOT_FOUND", `${where} does not exist`, { cause });
    }
    const extract = tarStream().extract();
    const input = createReadStream(file);
    input.on("error", (err) => extract.destroy(err));
    input.pipe(extract);
    let bytes: Buffer | undefined;
    try {
        for await (const entry of extract) {
            const name = entry.header.name.replace(/^(\.\/)+/, "");
            if (name === OCI_INDEX_FILE) {
                bytes = await readBodyCapped(entry, MAX_LAYOUT_INDEX_SIZE, `${where}: index.json`, {
                    declaredLength: entry.header.size,
                });
            } else {
                for await (const _ of entry) {
                    // skipped
                }
            }
        }
    } catch (cause) {
        if (isAirgapError(cause)) {
            throw cause;
        }
        throw new AirgapError("ERR_PARSE", `reading ${where}`, { cause });
    } finally {
        input.destroy();
    }
    if (bytes === undefined) {
        throw new AirgapError("ERR_PARSE", `${where} holds no index.json; it is not an OCI image archive`);
    }
    return parseLayoutIndex(bytes, `${where}: index.json`);
}
