import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { readTar, type TarEntry, tarHeader, tarPadding, tarTrailer } from "../../../provider/oci/tar";

function archive(files: { entry: TarEntry; data?: Buffer }[]): Buffer {
    const parts: Buffer[] = [];
    for (const { entry, data } of files) {
        parts.push(tarHeader(entry));
        if (data !== undefined) {
            parts.push(data, tarPadding(data.length));
        }
    }
    parts.push(tarTrailer());
    return Buffer.concat(parts);
}

async function list(bytes: Buffer, chunkSize = 100): Promise<{ entry: TarEntry; data: string }[]> {
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += chunkSize) {
        chunks.push(bytes.subarray(i, i + chunkSize));
    }
    const out: { entry: TarEntry; data: string }[] = [];
    await readTar(Readable.from(chunks), "test.tar", async (entry, body) => {
        const parts: Buffer[] = [];
        for await (const c of body) {
            parts.push(c);
        }
        out.push({ entry, data: Buffer.concat(parts).toString() });
    });
    return out;
}

describe("oci/tar", () => {
    it("reads back what it writes, long names included, whatever the chunking", async () => {
        const long = `blobs/sha512/${"ab".repeat(64)}`;
        const bytes = archive([
            { entry: { name: "oci-layout", type: "file", size: 5 }, data: Buffer.from("hello") },
            { entry: { name: "blobs", type: "directory", size: 0 } },
            { entry: { name: long, type: "file", size: 600 }, data: Buffer.alloc(600, "x") },
            { entry: { name: "empty", type: "file", size: 0 }, data: Buffer.alloc(0) },
        ]);
        const want = [
            { entry: { name: "oci-layout", type: "file", size: 5 }, data: "hello" },
            { entry: { name: "blobs", type: "directory", size: 0 }, data: "" },
            { entry: { name: long, type: "file", size: 600 }, data: "x".repeat(600) },
            { entry: { name: "empty", type: "file", size: 0 }, data: "" },
        ];
        for (const chunkSize of [1, 7, 512, 100_000]) {
            assert.deepEqual(await list(bytes, chunkSize), want, String(chunkSize));
        }
    });

    it("refuses what is not a tar archive, and truncated archives", async () => {
        await assert.rejects(list(Buffer.alloc(0)), {
            code: "ERR_PARSE",
            message: "test.tar is not a tar archive: it is empty",
        });
        await assert.rejects(list(Buffer.from('{"not": "a tar"}')), {
            code: "ERR_PARSE",
            message: "test.tar is not a tar archive",
        });
        await assert.rejects(list(Buffer.alloc(2048, 1)), {
            code: "ERR_PARSE",
            message: "test.tar is not a tar archive",
        });
        const whole = archive([
            { entry: { name: "index.json", type: "file", size: 1000 }, data: Buffer.alloc(1000, "y") },
        ]);
        await assert.rejects(list(whole.subarray(0, 900)), {
            code: "ERR_PARSE",
            message: 'test.tar is truncated (it ends inside "index.json")',
        });
        await assert.rejects(list(whole.subarray(0, 512 + 1024 + 100)), {
            code: "ERR_PARSE",
            message: "test.tar is truncated",
        });
    });

    it("refuses links", async () => {
        const header = tarHeader({ name: "evil", type: "file", size: 0 });
        header.write("2", 156, 1, "latin1");
        // Recompute the checksum for the changed type.
        header.fill(0x20, 148, 156);
        const sum = header.reduce((n, b) => n + b, 0);
        header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "latin1");
        await assert.rejects(list(Buffer.concat([header, tarTrailer()])), {
            code: "ERR_PARSE",
            message: 'test.tar: entry "evil" has tar type "2"; an image archive holds only files and directories',
        });
    });
});
