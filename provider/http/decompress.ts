/**
 * Stream decompressors for the compressions APT indexes come in.
 *
 * gzip uses node's zlib; xz uses `xz-decompress` (xz-embedded in WebAssembly, no native build),
 * loaded on first use. Should that package be missing (a trimmed install), `xz` is reported as
 * unsupported and callers pick another variant of the index.
 *
 * A caller that knows how large the output may be (an index's signed size) passes `maxBytes`:
 * decompression stops, and the stream fails with ERR_TOO_LARGE, as soon as more comes out, so a
 * small compressed file cannot fill the disk or memory (a "decompression bomb").
 */

import { pipeline, Readable, Transform } from "node:stream";
import type { ReadableStream } from "node:stream/web";
import { createGunzip } from "node:zlib";
import { tooLarge } from "./body";

export type Decompression = "gz" | "xz" | "none";

type XzModule = { XzReadableStream: new (input: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array> };

let xzModule: XzModule | null | undefined;

function loadXz(): XzModule | null {
    if (xzModule === undefined) {
        try {
            // Loaded lazily: the WebAssembly module is only needed for .xz indexes.
            xzModule = require("xz-decompress") as XzModule;
        } catch {
            xzModule = null;
        }
    }
    return xzModule;
}

/** True when `compression` can be decompressed here. */
export function canDecompress(compression: string): compression is Decompression {
    if (compression === "gz" || compression === "none") {
        return true;
    }
    return compression === "xz" && loadXz() !== null;
}

/** The compressions `canDecompress` accepts. */
export function supportedCompressions(): Decompression[] {
    return (["xz", "gz", "none"] as const).filter((c) => canDecompress(c));
}

export interface DecompressLimit {
    /** The most bytes the output may have. */
    readonly maxBytes: number;
    /** The error the stream fails with past `maxBytes`; defaults to ERR_TOO_LARGE naming the limit. */
    readonly error?: () => Error;
}

/**
 * The decompressed bytes of `input`. Corrupt input makes the returned stream fail; callers
 * SHOULD verify the compressed bytes before decompressing them. With `limit`, the stream fails
 * once the output passes `limit.maxBytes`, and the decompressor and `input` are destroyed.
 */
export function decompress(input: Readable, compression: Decompression, limit?: DecompressLimit): Readable {
    const output = decompressed(input, compression);
    return limit === undefined ? output : capped(output, limit);
}

function decompressed(input: Readable, compression: Decompression): Readable {
    switch (compression) {
        case "none":
            return input;
        case "gz":
            // pipeline destroys both streams on an error, so a reader of the result sees it.
            return pipeline(input, createGunzip(), () => undefined);
        case "xz": {
            const xz = loadXz();
            if (xz === null) {
                throw new Error("xz decompression needs the xz-decompress package");
            }
            const web = Readable.toWeb(input) as unknown as ReadableStream<Uint8Array>;
            return Readable.fromWeb(new xz.XzReadableStream(web) as never);
        }
    }
}

/** `stream`, failing once more than `limit.maxBytes` bytes have passed; then `stream` is destroyed. */
function capped(stream: Readable, limit: DecompressLimit): Readable {
    let total = 0;
    const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
            total += chunk.length;
            if (total > limit.maxBytes) {
                callback(limit.error?.() ?? tooLarge("decompressed output", limit.maxBytes));
                return;
            }
            callback(null, chunk);
        },
    });
    return pipeline(stream, counter, () => undefined);
}
