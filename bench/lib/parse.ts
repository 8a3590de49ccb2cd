import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseStanzas, toPackageRecord } from "../../provider/apt/control";
import { stanzaBatches } from "../../provider/apt/fetch";
import { makeTempDir } from "../../test/harness/tmp";

/**
 * Parsing speed on a `Packages` index as big as Debian main's (tens of thousands of stanzas):
 * the whole text at once with `parseStanzas`, and the streaming path the index fetch takes on a
 * cache entry (`stanzaBatches` over a file stream, each stanza made a record, the bytes hashed).
 */

/** A synthetic index: stanzas with the fields and lengths of Debian's. */
export function syntheticIndex(count: number): Buffer {
    const parts: string[] = [];
    for (let i = 0; i < count; i++) {
        const name = `pkg${i}-${(i * 7919) % 1000}`;
        const version = `${i % 11 === 0 ? "1:" : ""}${i % 13}.${i % 7}.${i % 5}-${(i % 3) + 1}`;
        const hex = createHash("sha256").update(name).digest("hex");
        const md5 = hex.slice(0, 32);
        const deps = Array.from(
            { length: i % 6 },
            (_, k) => `lib${(i + k * 31) % 5000}-${k} (>= ${k}.${i % 9})${k % 3 === 2 ? ` | alt${k}` : ""}`,
        ).join(", ");
        const lines = [
            `Package: ${name}`,
            i % 4 === 0 ? `Source: src${Math.floor(i / 4)} (${version}+b1)` : undefined,
            `Version: ${version}`,
            `Installed-Size: ${(i * 37) % 90000}`,
            "Maintainer: Generated Maintainers <maint@example.invalid>",
            `Architecture: ${i % 5 === 0 ? "all" : "amd64"}`,
            i % 10 === 0 ? "Multi-Arch: foreign" : undefined,
            deps === "" ? undefined : `Depends: ${deps}`,
            i % 7 === 0 ? `Recommends: rec${i % 300}, rec${(i + 1) % 300}` : undefined,
            i % 9 === 0 ? `Provides: virt${i % 50} (= ${version})` : undefined,
            `Description: generated package number ${i} for the parsing benchmark`,
            ` This is the long description of ${name}. It wraps over a few lines`,
            " the way Debian descriptions do, with a paragraph break below.",
            " .",
            ` Package ${i} of the synthetic index; its text is plain ASCII.`,
            `Homepage: https://example.invalid/projects/${name}`,
            `Description-md5: ${md5}`,
            `Tag: role::program, implemented-in::c, interface::commandline, suite::s${i % 40}`,
            `Section: ${["libs", "utils", "net", "devel", "admin"][i % 5]}`,
            "Priority: optional",
            `Filename: pool/main/${name.slice(0, 1)}/${name}/${name}_${version.replace(/^\d+:/, "")}_amd64.deb`,
            `Size: ${1000 + ((i * 7717) % 900000)}`,
            `MD5sum: ${md5}`,
            `SHA256: ${hex}`,
        ];
        parts.push(`${lines.filter((l) => l !== undefined).join("\n")}\n\n`);
    }
    return Buffer.from(parts.join(""));
}

export interface ParseResult {
    label: string;
    stanzas: number;
    bytes: number;
    /** Best of the runs. */
    ms: number;
    mbPerSecond: number;
}

async function best(runs: number, once: () => Promise<number>): Promise<{ ms: number; stanzas: number }> {
    let ms = Number.POSITIVE_INFINITY;
    let stanzas = 0;
    for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        stanzas = await once();
        ms = Math.min(ms, performance.now() - t0);
    }
    return { ms, stanzas };
}

export async function benchParsing(count: number, runs = 3): Promise<ParseResult[]> {
    const bytes = syntheticIndex(count);
    const dir = await makeTempDir("bench-parse");
    const file = join(dir, "Packages");
    await writeFile(file, bytes);
    const results: ParseResult[] = [];
    const record = (label: string, r: { ms: number; stanzas: number }) =>
        results.push({
            label,
            stanzas: r.stanzas,
            bytes: bytes.length,
            ms: r.ms,
            mbPerSecond: bytes.length / 1e6 / (r.ms / 1000),
        });

    record(
        "parseStanzas (whole text, decoded)",
        await best(runs, async () => parseStanzas(bytes.toString("utf8")).length),
    );
    record(
        "stanzaBatches (file stream)",
        await best(runs, async () => {
            let n = 0;
            for await (const batch of stanzaBatches(createReadStream(file))) n += batch.length;
            return n;
        }),
    );
    record(
        "stanzaBatches + toPackageRecord + SHA256 (index fetch path)",
        await best(runs, async () => {
            const hash = createHash("sha256");
            const hashed = (async function* () {
                for await (const chunk of createReadStream(file)) {
                    hash.update(chunk as Buffer);
                    yield chunk as Buffer;
                }
            })();
            const records = [];
            for await (const batch of stanzaBatches(hashed)) {
                for (const stanza of batch) records.push(toPackageRecord(stanza, "main"));
            }
            hash.digest("hex");
            return records.length;
        }),
    );
    return results;
}
