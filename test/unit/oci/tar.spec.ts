import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tar from "tar-stream";
import { layoutEntries, packLayout } from "../../../provider/oci/archive_dest";
import { extractLayoutTar } from "../../../provider/oci/archive_src";

const LAYOUT = '{"imageLayoutVersion":"1.0.0"}';

/** The bytes of a tar-stream pack (its chunks are typed `unknown`; they are Buffers). */
async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of stream) {
        parts.push(chunk as Buffer);
    }
    return Buffer.concat(parts);
}

async function* chunked(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
    for (let i = 0; i < bytes.length; i += size) {
        yield bytes.subarray(i, i + size);
    }
}

/** A tar made directly with tar-stream, for archives the layout writer never makes. */
async function tarOf(entries: { header: Partial<tar.Header> & { name: string }; data?: Buffer }[]): Promise<Buffer> {
    const pack = tar.pack();
    const bytes = collect(pack);
    for (const { header, data } of entries) {
        await new Promise<void>((resolve, reject) => {
            const done = (err?: Error | null): void => (err ? reject(err) : resolve());
            if (data === undefined) {
                pack.entry(header, done);
            } else {
                pack.entry(header, data, done);
            }
        });
    }
    pack.finalize();
    return bytes;
}

/** Every file under `dir` with its content, "/"-separated and sorted. */
function tree(dir: string): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (sub: string): void => {
        for (const name of fs.readdirSync(path.join(dir, sub)).sort()) {
            const rel = sub === "" ? name : `${sub}/${name}`;
            if (fs.statSync(path.join(dir, rel)).isDirectory()) {
                walk(rel);
            } else {
                out[rel] = fs.readFileSync(path.join(dir, rel), "utf8");
            }
        }
    };
    walk("");
    return out;
}

describe("oci/tar (archive transport, tar-stream)", () => {
    let work: string;
    let fresh = 0;
    const newDir = (): string => fs.mkdtempSync(path.join(work, `d${fresh++}-`));
    const extract = async (bytes: Buffer, chunkSize = 100): Promise<Record<string, string>> => {
        const dir = newDir();
        await extractLayoutTar(chunked(bytes, chunkSize), "test.tar", dir);
        return tree(dir);
    };

    before(() => {
        work = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-oci-tar-"));
    });

    after(() => {
        fs.rmSync(work, { recursive: true, force: true });
    });

    it("reads back the layout it writes, long blob names and empty blobs included, whatever the chunking", async () => {
        const big = "x".repeat(600);
        const sha512 = createHash("sha512").update(big).digest("hex");
        const empty = createHash("sha256").update("").digest("hex");
        const layout = newDir();
        fs.mkdirSync(path.join(layout, "blobs", "sha512"), { recursive: true });
        fs.mkdirSync(path.join(layout, "blobs", "sha256"), { recursive: true });
        fs.writeFileSync(path.join(layout, "oci-layout"), LAYOUT);
        fs.writeFileSync(path.join(layout, "index.json"), '{"schemaVersion":2,"manifests":[]}');
        fs.writeFileSync(path.join(layout, "blobs", "sha512", sha512), big);
        fs.writeFileSync(path.join(layout, "blobs", "sha256", empty), "");
        fs.writeFileSync(path.join(layout, "blobs", "sha256", ".tmp-left-by-a-crash"), "ignored");

        const entries = await layoutEntries(layout);
        assert.deepEqual(
            entries.map((e) => `${e.type} ${e.name}`),
            [
                "file oci-layout",
                "file index.json",
                "directory blobs",
                "directory blobs/sha256",
                `file blobs/sha256/${empty}`,
                "directory blobs/sha512",
                `file blobs/sha512/${sha512}`,
            ],
        );
        const bytes = await collect(packLayout(layout, entries));
        assert.ok(bytes.includes(`path=blobs/sha512/${sha512}\n`), "a pax header carries the long name");
        assert.deepEqual(await collect(packLayout(layout, entries)), bytes, "the same layout gives the same bytes");

        const want = tree(layout);
        delete want["blobs/sha256/.tmp-left-by-a-crash"];
        for (const chunkSize of [1, 7, 512, 100_000]) {
            assert.deepEqual(await extract(bytes, chunkSize), want, String(chunkSize));
        }
    });

    it("fails the archive stream when a file changes size while being archived", async () => {
        const layout = newDir();
        fs.mkdirSync(path.join(layout, "blobs"));
        fs.writeFileSync(path.join(layout, "oci-layout"), LAYOUT);
        fs.writeFileSync(path.join(layout, "index.json"), "{}");
        const entries = await layoutEntries(layout);
        fs.writeFileSync(path.join(layout, "index.json"), "{ }");
        await assert.rejects(collect(packLayout(layout, entries)), {
            code: "ERR_IO",
            message: "index.json changed size while being archived",
        });
        fs.writeFileSync(path.join(layout, "index.json"), "");
        await assert.rejects(collect(packLayout(layout, entries)), {
            code: "ERR_IO",
            message: "index.json changed size while being archived",
        });
    });

    it("refuses what is not a tar archive, and truncated archives", async () => {
        await assert.rejects(extract(Buffer.alloc(0)), {
            code: "ERR_PARSE",
            message: "test.tar is not a tar archive: it is empty",
        });
        await assert.rejects(extract(Buffer.from('{"not": "a tar"}')), {
            code: "ERR_PARSE",
            message: "test.tar is not a tar archive",
        });
        await assert.rejects(extract(Buffer.alloc(2048, 1)), {
            code: "ERR_PARSE",
            message: "test.tar is not a tar archive",
        });
        await assert.rejects(extract(Buffer.alloc(10240)), {
            code: "ERR_PARSE",
            message: "test.tar is not a tar archive: it starts with a zero block",
        });
        const whole = await tarOf([{ header: { name: "index.json", size: 1000 }, data: Buffer.alloc(1000, "y") }]);
        assert.equal(whole.length, 512 + 1024 + 1024);
        await assert.rejects(extract(whole.subarray(0, 900)), {
            code: "ERR_PARSE",
            message: 'test.tar is truncated (it ends inside "index.json")',
        });
        await assert.rejects(extract(whole.subarray(0, 512 + 1010)), {
            code: "ERR_PARSE",
            message: 'test.tar is truncated (it ends inside "index.json")',
        });
        await assert.rejects(extract(whole.subarray(0, 512 + 1024 + 100)), {
            code: "ERR_PARSE",
            message: "test.tar is truncated",
        });
        await assert.rejects(extract(whole.subarray(0, 512 + 1024)), {
            code: "ERR_PARSE",
            message: "test.tar is truncated",
        });
        // One zero block of the two that end an archive is enough.
        assert.deepEqual(await extract(whole.subarray(0, 512 + 1024 + 512)), { "index.json": "y".repeat(1000) });

        const corrupt = Buffer.concat([whole.subarray(0, 512 + 1024), Buffer.alloc(512, 7), Buffer.alloc(1024)]);
        await assert.rejects(extract(corrupt), {
            code: "ERR_PARSE",
            message: "test.tar: corrupt tar header (bad checksum)",
        });
    });

    it("refuses links and devices", async () => {
        const link = await tarOf([{ header: { name: "evil", type: "symlink", linkname: "/etc/passwd" } }]);
        await assert.rejects(extract(link), {
            code: "ERR_PARSE",
            message: 'test.tar: entry "evil" has tar type "2"; an image archive holds only files and directories',
        });
        const hard = await tarOf([{ header: { name: "./blobs/hard", type: "link", linkname: "oci-layout" } }]);
        await assert.rejects(extract(hard), {
            code: "ERR_PARSE",
            message: 'test.tar: entry "blobs/hard" has tar type "1"; an image archive holds only files and directories',
        });
    });

    it("refuses a blob that does not match its name, a bad blob name and a layout file given twice", async () => {
        const wrong = await tarOf([
            { header: { name: `blobs/sha256/${"0".repeat(64)}`, size: 3 }, data: Buffer.from("abc") },
        ]);
        await assert.rejects(extract(wrong), {
            code: "ERR_VERIFICATION",
            message: new RegExp(`^blob sha256:${"0".repeat(64)}: digest mismatch`),
        });
        const badName = await tarOf([{ header: { name: "blobs/sha256/not-hex", size: 1 }, data: Buffer.from("a") }]);
        await assert.rejects(extract(badName), {
            code: "ERR_PARSE",
            message: 'test.tar: "blobs/sha256/not-hex" is not a blob name (blobs/<algorithm>/<hex>)',
        });
        const twice = await tarOf([
            { header: { name: "oci-layout", size: LAYOUT.length }, data: Buffer.from(LAYOUT) },
            { header: { name: "./oci-layout", size: LAYOUT.length }, data: Buffer.from(LAYOUT) },
        ]);
        await assert.rejects(extract(twice), {
            code: "ERR_PARSE",
            message: "test.tar holds the same layout file twice",
        });
    });

    it("skips directories and files a layout does not define", async () => {
        const bytes = await tarOf([
            { header: { name: "./", type: "directory" } },
            { header: { name: "./README", size: 5 }, data: Buffer.from("hello") },
            { header: { name: "./oci-layout", size: LAYOUT.length }, data: Buffer.from(LAYOUT) },
        ]);
        assert.deepEqual(await extract(bytes, 7), { "oci-layout": LAYOUT });
    });
});
