import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { type FetchedRelease, fetchPackageIndexes } from "../../../provider/apt/fetch";
import { parseRelease } from "../../../provider/apt/release";
import { canDecompress } from "../../../provider/http/decompress";
import { withCode } from "../../harness/expect";
import { type StaticServer, startStaticServer } from "../../harness/servers/http";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** A Packages index that decompresses to 64 MiB: one stanza repeated. */
const HUGE = Buffer.from(
    "Package: bomb\nVersion: 1\nArchitecture: amd64\nFilename: pool/b.deb\nSize: 1\n\n".repeat(900_000),
);
/** What the signed Release says the uncompressed index is. */
const SMALL = Buffer.from("Package: app\nVersion: 1\nArchitecture: amd64\nFilename: pool/a.deb\nSize: 1\n\n");

describe("apt indexes that decompress to more than the signed Release lists", function () {
    this.timeout(120_000);
    let root: string;
    let server: StaticServer;
    let release: FetchedRelease;

    before(async () => {
        root = await makeTempDir("bomb-repo");
        const dir = join(root, "dists", "stable", "main", "binary-amd64");
        await mkdir(dir, { recursive: true });
        const files: [string, Buffer][] = [["main/binary-amd64/Packages.gz", gzipSync(HUGE)]];
        if (canDecompress("xz")) {
            files.push([
                "main/binary-amd64/Packages.xz",
                execFileSync("xz", ["-0", "-T1", "-c"], { input: HUGE, maxBuffer: 64 * MiB }),
            ]);
        }
        for (const [path, bytes] of files) {
            await writeFile(join(root, "dists", "stable", path), bytes);
        }
        // The uncompressed index is listed (as Debian does) but not served; its size is the cap.
        const listed = [...files, ["main/binary-amd64/Packages", SMALL] as [string, Buffer]];
        const text = [
            "Suite: stable",
            "Codename: stable",
            "Architectures: amd64",
            "Components: main",
            "SHA256:",
            ...listed.map(([path, bytes]) => ` ${sha256(bytes)} ${bytes.length} ${path}`),
            "",
        ].join("\n");
        server = await startStaticServer(root);
        release = {
            url: server.url,
            distribution: "stable",
            suiteUrl: `${server.url}/dists/stable`,
            release: parseRelease(text),
            text,
            from: "Release",
        };
    });
    after(async () => {
        await server?.close();
        await cleanupAll();
    });

    for (const compression of ["gz", "xz"] as const) {
        it(`refuses a Packages.${compression} that decompresses past the signed size, caching nothing`, async function () {
            if (!canDecompress(compression)) this.skip();
            const cacheDir = await makeTempDir("bomb-cache");
            await assert.rejects(
                fetchPackageIndexes({
                    release,
                    components: ["main"],
                    architectures: ["amd64"],
                    includeAll: false,
                    compressions: [compression],
                    cacheDir,
                }),
                withCode(
                    "ERR_TOO_LARGE",
                    new RegExp(
                        `main/binary-amd64/Packages\\.${compression} \\(.*\\) decompresses to more than ${SMALL.length} bytes, ` +
                            "the size the signed Release lists for main/binary-amd64/Packages",
                    ),
                ),
            );
            const left = await readdir(cacheDir, { recursive: true, withFileTypes: true });
            assert.deepEqual(
                left.filter((e) => e.isFile()).map((e) => e.name),
                [],
                "nothing is left in the cache",
            );
        });
    }
});
