import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import { AirgapError } from "../../../provider/errors";
import { canDecompress, type Decompression, decompress } from "../../../provider/http/decompress";
import { withCode } from "../../harness/expect";

const MiB = 1024 * 1024;
const ZEROS = Buffer.alloc(64 * MiB);

/** Reads `stream` to its end; returns the bytes seen, or the error together with them. */
async function drain(stream: Readable): Promise<{ bytes: number; error?: Error }> {
    let bytes = 0;
    try {
        for await (const chunk of stream) {
            bytes += (chunk as Buffer).length;
        }
        return { bytes };
    } catch (error) {
        return { bytes, error: error as Error };
    }
}

const BOMBS: Record<Exclude<Decompression, "none">, () => Buffer> = {
    gz: () => gzipSync(ZEROS),
    xz: () => execFileSync("xz", ["-0", "-T1", "-c"], { input: ZEROS, maxBuffer: 16 * MiB }),
};

describe("decompression with a size cap", function () {
    this.timeout(120_000);

    for (const compression of ["gz", "xz"] as const) {
        it(`stops a ${compression} bomb (64 MiB of zeros) once the output passes the cap`, async function () {
            if (!canDecompress(compression)) this.skip();
            const bomb = BOMBS[compression]();
            assert.ok(bomb.length < MiB, `the bomb is small: ${bomb.length} bytes`);
            const input = Readable.from([bomb]);
            const { bytes, error } = await drain(decompress(input, compression, { maxBytes: MiB }));
            assert.ok(error !== undefined, "the stream fails");
            withCode("ERR_TOO_LARGE", /^decompressed output is larger than the 1 MiB allowed$/)(error);
            assert.ok(bytes <= MiB, `${bytes} bytes came out`);
            assert.ok(input.destroyed, "the compressed input is no longer read");
        });
    }

    it("fails with the caller's error, naming the file and the signed size", async () => {
        const { error } = await drain(
            decompress(Readable.from([gzipSync(ZEROS)]), "gz", {
                maxBytes: 1000,
                error: () => new AirgapError("ERR_TOO_LARGE", "main/binary-amd64/Packages.gz: more than 1000 bytes"),
            }),
        );
        assert.ok(error !== undefined);
        withCode("ERR_TOO_LARGE", /Packages\.gz: more than 1000 bytes/)(error);
    });

    it("passes output of exactly the cap, and uncompressed input past it fails", async () => {
        const text = Buffer.from("Package: a\nVersion: 1\n\n".repeat(1000));
        const exact = await drain(decompress(Readable.from([gzipSync(text)]), "gz", { maxBytes: text.length }));
        assert.deepEqual(exact, { bytes: text.length });
        const plain = await drain(decompress(Readable.from([text]), "none", { maxBytes: text.length - 1 }));
        assert.ok(plain.error !== undefined);
        withCode("ERR_TOO_LARGE")(plain.error);
    });
});
