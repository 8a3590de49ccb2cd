/**
 * Helpers for the registry and copy tests: skopeo (the judge, and the tool that fills source
 * registries so they are not written by the code under test), test images as OCI layouts, and a
 * forwarding proxy in front of a registry that misbehaves on purpose.
 */

import { mkdir, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, request as httpRequest, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { MEDIA_TYPE_OCI_INDEX } from "../../../provider/oci/manifest";
import { run } from "../../harness/servers/process";
import { makeTempDir } from "../../harness/tmp";
import { type Blob, makeImage, makeIndex, makeLayer, type TestImage } from "./fixtures";

/** Runs skopeo without a signature policy (the tests only move their own images). */
export async function skopeo(args: string[], check = true) {
    return run("skopeo", ["--insecure-policy", ...args], { check, timeoutMs: 120_000 });
}

/** The digest of what `skopeo inspect --raw` returns for `ref`, plus the raw bytes. */
export async function skopeoRaw(ref: string, extra: string[] = ["--tls-verify=false"]): Promise<Buffer> {
    return (await skopeo(["inspect", "--raw", ...extra, ref])).stdoutBytes;
}

/** Writes blobs and a one-entry `index.json` naming `top` as `tag`: an OCI layout skopeo reads. */
export async function writeLayout(blobs: readonly Blob[], top: Blob, tag: string): Promise<string> {
    const dir = await makeTempDir("layout");
    await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
    await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    for (const b of [...blobs, top]) {
        await writeFile(join(dir, "blobs", ...b.digest.split(":")), b.bytes);
    }
    const entry = {
        mediaType: top.mediaType,
        digest: top.digest,
        size: top.bytes.length,
        annotations: { "org.opencontainers.image.ref.name": tag },
    };
    await writeFile(
        join(dir, "index.json"),
        JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [entry] }),
    );
    return dir;
}

function imageBlobs(image: TestImage): Blob[] {
    return [image.config, ...image.layers, image.manifest];
}

/** A two-platform index (amd64, arm64/v8) whose images share their base layer; `oci:DIR:TAG`. */
export async function multiArchLayout(tag: string, extra = ""): Promise<{ reference: string; shared: string }> {
    const base = makeLayer({ "base.txt": `shared base layer ${extra}\n`.repeat(50) });
    const amd = makeImage([base, makeLayer({ "arch.txt": `amd64 ${extra}\n` })], "amd64");
    const arm = makeImage([base, makeLayer({ "arch.txt": `arm64 ${extra}\n` })], "arm64", "v8");
    const index = makeIndex([
        { image: amd, architecture: "amd64" },
        { image: arm, architecture: "arm64", variant: "v8" },
    ]);
    const dir = await writeLayout([...imageBlobs(amd), ...imageBlobs(arm)], index, tag);
    return { reference: `oci:${dir}:${tag}`, shared: base.gz.digest };
}

/** A single-platform OCI image with a layer of `size` pseudo-random (incompressible) bytes. */
export async function singleLayout(tag: string, size = 4096, seed = 1): Promise<string> {
    let x = seed;
    const random = Buffer.alloc(size);
    for (let i = 0; i < size; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        random[i] = x >>> 24;
    }
    const layer = makeLayer({ "data.bin": random.toString("latin1") });
    const image = makeImage([layer], "amd64");
    const dir = await writeLayout(imageBlobs(image), image.manifest, tag);
    return `oci:${dir}:${tag}`;
}

/** What a fault does to a matching request. */
export interface ProxyFault {
    readonly method?: string;
    readonly path: RegExp;
    /** Answer with this status instead of forwarding. */
    readonly status?: number;
    /** Forward, send the headers and half the body, then reset the connection. */
    readonly reset?: boolean;
    /** Forward, but answer with this body (and these headers replacing the upstream ones). */
    readonly replaceBody?: Buffer;
    readonly headers?: Record<string, string>;
    /** Drop these upstream response headers. */
    readonly dropHeaders?: readonly string[];
    /** Applies to this many requests; all when absent. */
    readonly times?: number;
}

export interface ProxyLogEntry {
    readonly method: string;
    readonly path: string;
    status: number;
    fault?: string;
}

export interface FaultProxy {
    /** "127.0.0.1:PORT" */
    readonly host: string;
    readonly log: ProxyLogEntry[];
    fault(rule: ProxyFault): void;
    clear(): void;
    close(): Promise<void>;
}

/** A proxy on 127.0.0.1 forwarding to the plain-HTTP registry at `upstream` ("http://127.0.0.1:PORT"). */
export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
    const target = new URL(upstream);
    const rules: { rule: ProxyFault; left: number }[] = [];
    const log: ProxyLogEntry[] = [];
    const sockets = new Set<Socket>();
    const take = (method: string, path: string): ProxyFault | undefined => {
        for (const r of rules) {
            if (r.left > 0 && (r.rule.method === undefined || r.rule.method === method) && r.rule.path.test(path)) {
                r.left--;
                return r.rule;
            }
        }
        return undefined;
    };
    const handle = (req: IncomingMessage, res: ServerResponse): void => {
        const method = req.method ?? "GET";
        const path = req.url ?? "/";
        const entry: ProxyLogEntry = { method, path: path.split("?")[0]!, status: 0 };
        log.push(entry);
        const rule = take(method, path);
        if (rule?.status !== undefined) {
            entry.status = rule.status;
            entry.fault = "status";
            req.resume();
            res.writeHead(rule.status, { "content-type": "text/plain" });
            res.end(`injected ${rule.status}\n`);
            return;
        }
        const up = httpRequest(
            {
                host: target.hostname,
                port: target.port,
                method,
                path,
                headers: req.headers,
            },
            (upRes) => {
                entry.status = upRes.statusCode ?? 0;
                const headers = { ...upRes.headers };
                for (const h of rule?.dropHeaders ?? []) delete headers[h];
                if (rule?.replaceBody !== undefined || rule?.reset === true) {
                    const chunks: Buffer[] = [];
                    upRes.on("data", (c: Buffer) => chunks.push(c));
                    upRes.on("end", () => {
                        if (rule.replaceBody !== undefined) {
                            entry.fault = "replaceBody";
                            const body = rule.replaceBody;
                            res.writeHead(upRes.statusCode ?? 200, {
                                ...headers,
                                ...rule.headers,
                                "content-length": String(body.length),
                            });
                            res.end(method === "HEAD" ? undefined : body);
                            return;
                        }
                        entry.fault = "reset";
                        const body = Buffer.concat(chunks);
                        res.writeHead(upRes.statusCode ?? 200, headers);
                        res.flushHeaders();
                        res.write(body.subarray(0, Math.max(1, Math.floor(body.length / 2))), () =>
                            res.socket?.resetAndDestroy(),
                        );
                    });
                    return;
                }
                res.writeHead(upRes.statusCode ?? 502, headers);
                upRes.pipe(res);
            },
        );
        up.on("error", () => res.destroy());
        req.pipe(up);
    };
    const server = createServer(handle);
    server.on("connection", (s) => {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    return {
        host: `127.0.0.1:${port}`,
        log,
        fault(rule) {
            rules.push({ rule, left: rule.times ?? Number.POSITIVE_INFINITY });
        },
        clear() {
            rules.length = 0;
            log.length = 0;
        },
        close() {
            return new Promise<void>((resolve) => {
                for (const s of sockets) s.destroy();
                server.close(() => resolve());
            });
        },
    };
}
