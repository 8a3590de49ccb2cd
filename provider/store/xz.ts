/**
 * xz compression through Debian's `xz` (xz-utils). No xz compressor for Node 20 is both
 * maintained and free of native builds; `xz` is on every Debian host that runs dpkg.
 * Decompression of upstream indexes uses `xz-decompress` (WebAssembly) instead, see
 * provider/http/decompress.ts.
 */
import { spawn } from "node:child_process";
import { AirgapError } from "../errors";

/**
 * The bytes of `data` as an .xz file (`xz -6`, CRC64, as apt-ftparchive writes them), cut into
 * blocks of 1 MiB that two threads compress at once. A `Packages` of 7,000 stanzas (5 MB) took
 * 2.8 s of CPU as one block, and half that wall time and two thirds of the CPU in blocks, for a
 * file 0.3 % larger; publishing waits for it. The output depends on the block size only, not on
 * the thread count, and every xz decoder reads multi-block files.
 */
export function xzCompress(data: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
        const child = spawn("xz", ["-6", "-T2", "--block-size=1MiB", "-c", "-"], { stdio: ["pipe", "pipe", "pipe"] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (c: Buffer) => out.push(c));
        child.stderr.on("data", (c: Buffer) => err.push(c));
        child.on("error", (cause) =>
            reject(new AirgapError("ERR_IO", "running xz (install xz-utils) to compress an index", { cause })),
        );
        child.on("close", (code) => {
            if (code === 0) {
                resolve(Buffer.concat(out));
            } else {
                reject(new AirgapError("ERR_IO", `xz exited with ${code}: ${Buffer.concat(err).toString().trim()}`));
            }
        });
        child.stdin.end(data);
    });
}

/** The publisher's compressor hook for `Packages.xz`. */
export const xzIndexCompressor = { extension: ".xz", compress: xzCompress } as const;
