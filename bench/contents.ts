/**
 * Peak memory of building `Contents-<arch>.gz` (`provider/apt/contents.ts`), as the number of
 * packages grows: a synthetic index of N `.deb`s (default 20000, each with 12 files, data.tar.gz),
 * written in-process, then `buildContents` run in a child process per size, which prints its
 * peak RSS (`VmHWM`). Not a test: it prints numbers and asserts nothing.
 *
 *     npx tsc -p tsconfig.json && node lib/bench/contents.js [--packages 20000] [--files 12] [--max-old-space 16]
 *
 * `--max-old-space MB` runs the children with that V8 heap limit: a build that kept something
 * per package would fail there (out of memory) as the count grows.
 *
 * `sort`, which orders the lines, runs in a process of its own with a 64 MiB buffer (`-S`) and
 * temporary files; its memory is bounded by that buffer and is not in the figure.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { buildContents, type ContentsPackage } from "../provider/apt/contents";

function option(name: string, fallback: number): number {
    const at = process.argv.indexOf(`--${name}`);
    return at < 0 ? fallback : Number(process.argv[at + 1]);
}

function tarEntry(name: string, body: Buffer): Buffer {
    const header = Buffer.alloc(512);
    header.write(name, 0, 100, "utf8");
    header.write("0000644\0", 100);
    header.write("0000000\0", 108);
    header.write("0000000\0", 116);
    header.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
    header.write("14471330000\0", 136);
    header.write("        ", 148);
    header.write("0", 156);
    header.write("ustar\0", 257);
    header.write("00", 263);
    let sum = 0;
    for (const b of header) sum += b;
    header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    const padding = Buffer.alloc((512 - (body.length % 512)) % 512);
    return Buffer.concat([header, body, padding]);
}

function arMember(name: string, body: Buffer): Buffer {
    const header = `${name.padEnd(16)}${"0".padEnd(12)}${"0".padEnd(6)}${"0".padEnd(6)}${"100644".padEnd(8)}${String(body.length).padEnd(10)}\`\n`;
    return Buffer.concat([
        Buffer.from(header, "latin1"),
        body,
        body.length % 2 === 1 ? Buffer.from("\n") : Buffer.alloc(0),
    ]);
}

/** A minimal but well-formed .deb: debian-binary, control.tar.gz, data.tar.gz with `files` paths. */
function syntheticDeb(name: string, files: readonly string[]): Buffer {
    const control = Buffer.from(
        `Package: ${name}\nVersion: 1.0\nArchitecture: amd64\nMaintainer: b <b@example.invalid>\nDescription: b\n`,
    );
    const controlTar = gzipSync(Buffer.concat([tarEntry("./control", control), Buffer.alloc(1024)]));
    const dataTar = gzipSync(
        Buffer.concat([...files.map((f) => tarEntry(`./${f}`, Buffer.from(`${name} ${f}\n`))), Buffer.alloc(1024)]),
    );
    return Buffer.concat([
        Buffer.from("!<arch>\n"),
        arMember("debian-binary", Buffer.from("2.0\n")),
        arMember("control.tar.gz", controlTar),
        arMember("data.tar.gz", dataTar),
    ]);
}

const debName = (i: number) => `pkg-${String(i).padStart(6, "0")}`;

function* packagesOf(dir: string, count: number): Generator<ContentsPackage> {
    for (let i = 0; i < count; i++) {
        yield {
            file: path.join(dir, `${debName(i)}_1.0_amd64.deb`),
            name: debName(i),
            architecture: i % 10 === 0 ? "all" : "amd64",
            component: "main",
            section: i % 3 === 0 ? "libs" : "utils",
        };
    }
}

async function measure(dir: string, count: number): Promise<void> {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-bench-contents-"));
    const started = Date.now();
    const built = await buildContents({
        packages: packagesOf(dir, count),
        components: ["main"],
        architectures: ["amd64"],
        workDir: work,
    });
    const seconds = (Date.now() - started) / 1000;
    const status = fs.readFileSync("/proc/self/status", "utf8");
    const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
    const file = built.get("main/Contents-amd64.gz")!;
    console.log(
        JSON.stringify({ packages: count, peakRssKiB: hwm, seconds, gzBytes: file.size, plainBytes: file.plain.size }),
    );
    fs.rmSync(work, { recursive: true, force: true });
}

async function main(): Promise<void> {
    if (process.argv[2] === "--measure") {
        await measure(process.argv[3]!, Number(process.argv[4]));
        return;
    }
    const count = option("packages", 20000);
    const perPackage = option("files", 12);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "airgap-bench-debs-"));
    try {
        const started = Date.now();
        for (let i = 0; i < count; i++) {
            const name = debName(i);
            const files = [
                `usr/bin/${name}`,
                `usr/share/doc/${name}/copyright`,
                `usr/share/doc/${name}/changelog.Debian.gz`,
                // A path a few packages share.
                `usr/share/common/group-${Math.floor(i / 10)}.conf`,
                ...Array.from({ length: Math.max(0, perPackage - 4) }, (_, j) => `usr/lib/${name}/module-${j}.so`),
            ];
            fs.writeFileSync(path.join(dir, `${name}_1.0_amd64.deb`), syntheticDeb(name, files));
        }
        console.log(
            `generated ${count} .debs of ${perPackage} files in ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
        const sizes = [...new Set([Math.max(1, Math.floor(count / 10)), count])];
        console.log("| packages | peak RSS (MiB) | seconds | Contents-amd64.gz | uncompressed |");
        console.log("|---:|---:|---:|---:|---:|");
        for (const n of sizes) {
            const heap = option("max-old-space", 0);
            const flags = heap > 0 ? [`--max-old-space-size=${heap}`] : [];
            const child = spawnSync(process.execPath, [...flags, __filename, "--measure", dir, String(n)], {
                encoding: "utf8",
            });
            if (child.status !== 0) {
                throw new Error(`measuring ${n} packages failed: ${child.stderr}`);
            }
            const r = JSON.parse(child.stdout.trim().split("\n").at(-1)!) as Record<string, number>;
            console.log(
                `| ${r.packages} | ${(r.peakRssKiB / 1024).toFixed(1)} | ${r.seconds.toFixed(1)} | ${(r.gzBytes / 1048576).toFixed(1)} MiB | ${(r.plainBytes / 1048576).toFixed(1)} MiB |`,
            );
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
