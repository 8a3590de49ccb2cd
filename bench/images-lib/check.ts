/**
 * What the benchmark checks and counts besides time: that every destination holds each image
 * under the source's digests (read back by skopeo, the tool the mirror's clients trust, and for
 * layouts also by hashing the blob files), how much a registry's storage grew, and how many blob
 * bytes the source registry served (from its access log).
 */

import { createHash } from "node:crypto";
import { createReadStream, type Dirent } from "node:fs";
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../../test/harness/servers/process";
import type { GeneratedImage } from "./generate";
import { inParallel } from "./measure";

/** skopeo without a signature policy: the benchmark only moves its own images. */
export async function skopeo(args: readonly string[]): Promise<Buffer> {
    return (await run("skopeo", ["--insecure-policy", ...args], { timeoutMs: 300_000 })).stdoutBytes;
}

function sha256(bytes: Buffer): string {
    return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

async function fileDigest(path: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(path)) {
        hash.update(chunk as Buffer);
    }
    return `sha256:${hash.digest("hex")}`;
}

/** The digest of the manifest bytes skopeo reads at `ref`. */
async function digestAt(ref: string, extra: readonly string[]): Promise<string> {
    return sha256(await skopeo(["inspect", "--raw", ...extra, ref]));
}

/**
 * Problems found in a registry (`host`, each image in the repository `repository` names): its tag
 * must give the source's top digest, and each child of an index must be there by its digest.
 */
export async function checkRegistry(
    host: string,
    images: readonly GeneratedImage[],
    repository: (image: GeneratedImage) => string = (image) => image.repository,
): Promise<string[]> {
    const problems: string[] = [];
    const tls = ["--tls-verify=false"];
    await inParallel(images, 4, async (image) => {
        const repo = `docker://${host}/${repository(image)}`;
        try {
            const top = await digestAt(`${repo}:${image.tag}`, tls);
            if (top !== image.digest) {
                problems.push(`${repo}:${image.tag} is ${top}, the source has ${image.digest}`);
            }
            for (const child of image.children) {
                const got = await digestAt(`${repo}@${child}`, tls);
                if (got !== child) {
                    problems.push(`${repo}@${child} reads as ${got}`);
                }
            }
        } catch (e) {
            problems.push(`${repo}:${image.tag}: ${(e as Error).message.split("\n").slice(0, 3).join(" ")}`);
        }
    });
    return problems;
}

/**
 * Problems found in an OCI layout: skopeo must read each image's reference name as the source's
 * top digest, and every manifest, config and layer below it must be a blob file whose content
 * hashes to its name.
 */
export async function checkLayout(
    dir: string,
    images: readonly GeneratedImage[],
    refName: (image: GeneratedImage) => string,
): Promise<string[]> {
    const problems: string[] = [];
    const blobPath = (digest: string) => join(dir, "blobs", ...digest.split(":"));
    const checked = new Map<string, Promise<string>>();
    const checkBlob = (digest: string): Promise<string> => {
        let p = checked.get(digest);
        if (p === undefined) {
            p = fileDigest(blobPath(digest)).catch((e: Error) => `unreadable (${e.message})`);
            checked.set(digest, p);
        }
        return p;
    };
    await inParallel(images, 4, async (image) => {
        const ref = `oci:${dir}:${refName(image)}`;
        try {
            const top = await digestAt(ref, []);
            if (top !== image.digest) {
                problems.push(`${ref} is ${top}, the source has ${image.digest}`);
                return;
            }
            const manifests = [image.digest, ...image.children];
            for (const m of manifests) {
                const got = await checkBlob(m);
                if (got !== m) {
                    problems.push(`${ref}: manifest blob ${m} is ${got}`);
                    continue;
                }
                const parsed = JSON.parse(await readFile(blobPath(m), "utf8")) as {
                    config?: { digest: string };
                    layers?: { digest: string }[];
                };
                for (const d of [parsed.config, ...(parsed.layers ?? [])]) {
                    if (d === undefined) continue;
                    const blob = await checkBlob(d.digest);
                    if (blob !== d.digest) {
                        problems.push(`${ref}: blob ${d.digest} is ${blob}`);
                    }
                }
            }
        } catch (e) {
            problems.push(`${ref}: ${(e as Error).message.split("\n")[0]}`);
        }
    });
    return problems;
}

/** Unpacks an `oci-archive:` file with GNU tar into `into`, for `checkLayout`. */
export async function unpackArchive(file: string, into: string): Promise<void> {
    await mkdir(into, { recursive: true });
    await run("tar", ["-xf", file, "-C", into]);
}

/** Bytes of the regular files under `dir` (0 when it does not exist). */
export async function treeBytes(dir: string): Promise<number> {
    let entries: Dirent[];
    try {
        entries = await readdir(dir, { withFileTypes: true });
    } catch {
        return 0;
    }
    let total = 0;
    for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
            total += await treeBytes(p);
        } else if (e.isFile()) {
            total += (await stat(p)).size;
        }
    }
    return total;
}

/** Blob storage of a `docker-registry` with the filesystem driver rooted at `dataDir`. */
export function registryBlobBytes(dataDir: string): Promise<number> {
    return treeBytes(join(dataDir, "docker", "registry", "v2", "blobs"));
}

/**
 * Blob bytes a registry served, from the access-log lines (combined log format) in `log`:
 * successful GETs of `/v2/<name>/blobs/<digest>`, with their response sizes.
 */
export function blobBytesServed(log: string): { bytes: number; requests: number } {
    let bytes = 0;
    let requests = 0;
    const line = /"GET \/v2\/\S+\/blobs\/sha256:[0-9a-f]{64} HTTP\/[\d.]+" (200|206) (\d+)/g;
    for (const m of log.matchAll(line)) {
        bytes += Number(m[2]);
        requests++;
    }
    return { bytes, requests };
}
