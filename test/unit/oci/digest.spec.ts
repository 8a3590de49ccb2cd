import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DigestVerifier, digestOf, formatDigest, isDigest, parseDigest } from "../../../provider/oci/digest";

const HEX64 = "a".repeat(64);
const HEX128 = "0123456789abcdef".repeat(8);

async function drain(data: Buffer[], expected: { digest: string; size?: number }): Promise<Buffer> {
    const out: Buffer[] = [];
    const verifier = new DigestVerifier(expected);
    await pipeline(Readable.from(data), verifier, async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) {
            out.push(chunk);
        }
    });
    return Buffer.concat(out);
}

describe("oci/digest", () => {
    it("parses sha256 and sha512 digests and formats them back", () => {
        assert.deepEqual(parseDigest(`sha256:${HEX64}`), { algorithm: "sha256", hex: HEX64 });
        assert.deepEqual(parseDigest(`sha512:${HEX128}`), { algorithm: "sha512", hex: HEX128 });
        assert.equal(formatDigest(parseDigest(`sha512:${HEX128}`)), `sha512:${HEX128}`);
    });

    it("rejects other algorithms, upper-case hex and wrong lengths with ERR_PARSE naming the digest", () => {
        const cases: [string, RegExp][] = [
            [`md5:${"a".repeat(32)}`, /unsupported algorithm "md5"/],
            [`sha256:${"A".repeat(64)}`, /lower-case/],
            [`sha256:${"a".repeat(63)}`, /needs 64 hex digits, got 63/],
            [`sha512:${HEX64}`, /needs 128 hex digits, got 64/],
            [HEX64, /expected "algorithm:hex"/],
            [`sha256:${"g".repeat(64)}`, /lower-case hexadecimal/],
        ];
        for (const [input, message] of cases) {
            assert.throws(
                () => parseDigest(input),
                (err: Error & { code?: string }) =>
                    err.code === "ERR_PARSE" && err.message.includes(`"${input}"`) && message.test(err.message),
                input,
            );
            assert.equal(isDigest(input), false);
        }
        assert.equal(isDigest(`sha256:${HEX64}`), true);
    });

    it("computes digests of bytes", () => {
        assert.equal(
            digestOf(Buffer.from("hello")),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        );
        assert.equal(digestOf("hello", "sha512"), `sha512:${createHash("sha512").update("hello").digest("hex")}`);
    });

    it("passes verified data through unchanged", async () => {
        const data = [Buffer.from("hel"), Buffer.from("lo")];
        assert.deepEqual(await drain(data, { digest: digestOf("hello"), size: 5 }), Buffer.from("hello"));
        assert.deepEqual(await drain(data, { digest: digestOf("hello", "sha512") }), Buffer.from("hello"));
    });

    it("fails at the end on a digest mismatch, naming expected and actual", async () => {
        const wrong = digestOf("world");
        await assert.rejects(drain([Buffer.from("hello")], { digest: wrong, size: 5 }), {
            code: "ERR_VERIFICATION",
            message: `blob ${wrong}: digest mismatch, expected ${wrong}, got ${digestOf("hello")}`,
        });
    });

    it("fails on a short stream and as soon as a long stream passes the size", async () => {
        const d = digestOf("hello");
        await assert.rejects(drain([Buffer.from("hell")], { digest: d, size: 5 }), {
            code: "ERR_VERIFICATION",
            message: `blob ${d}: expected 5 bytes, got 4`,
        });
        const endless = new Readable({
            read() {
                this.push(Buffer.alloc(1024));
            },
        });
        await assert.rejects(drain([], { digest: d, size: 5 }), {
            code: "ERR_VERIFICATION",
            message: `blob ${d}: expected 5 bytes, got 0`,
        });
        const verifier = new DigestVerifier({ digest: d, size: 5 });
        await assert.rejects(
            pipeline(endless, verifier, async (source: AsyncIterable<Buffer>) => {
                for await (const _ of source) {
                    // discard
                }
            }),
            { code: "ERR_VERIFICATION", message: `blob ${d}: expected 5 bytes, got more (at least 1024)` },
        );
    });

    it("rejects an invalid expected digest or size up front", () => {
        assert.throws(() => new DigestVerifier({ digest: "sha1:abc" }), { code: "ERR_PARSE" });
        assert.throws(() => new DigestVerifier({ digest: digestOf("x"), size: -1 }), { code: "ERR_INVALID_ARGUMENT" });
    });
});
