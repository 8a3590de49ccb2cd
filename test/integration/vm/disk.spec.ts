import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { hasCode } from "../../../provider/errors";
import { assembleImage, ext4SizeFor, inspectImage, makeExt4, makeSeedIso } from "../../../provider/vm/disk";
import { makeTempDir, removeTempDir } from "../../harness/tmp";

/**
 * The disk builders judged by the real tools: debugfs and e2fsck read the ext4, xorriso and
 * isoinfo the seed, qemu-img and sfdisk the assembled image.
 */

const MiB = 1024 * 1024;
const UUID = "6a1c3e9e-5f0b-4e7a-9d2c-0b8f1d2e3a4b";

function sh(tool: string, args: string[], input?: string): Buffer {
    return execFileSync(tool, args, { input, maxBuffer: 1024 * MiB, stdio: ["pipe", "pipe", "pipe"] });
}
function text(tool: string, args: string[], input?: string): string {
    return sh(tool, args, input).toString();
}
function sha(file: string): string {
    return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}
function debugfs(image: string, request: string): string {
    return text("debugfs", ["-R", request, image]);
}
/** Bytes [offset, offset + length) of `file`. */
function slice(file: string, offset: number, length: number): Buffer {
    const fd = fs.openSync(file, "r");
    try {
        const buf = Buffer.alloc(length);
        const n = fs.readSync(fd, buf, 0, length, offset);
        return buf.subarray(0, n);
    } finally {
        fs.closeSync(fd);
    }
}
function invalid(argument: string) {
    return (err: unknown) => {
        assert.ok(hasCode(err, "ERR_INVALID_ARGUMENT"), `not an invalid-argument error: ${String(err)}`);
        assert.equal((err as { argument?: string }).argument, argument, (err as Error).message);
        assert.ok((err as Error).message.startsWith(`${argument}: `), (err as Error).message);
        return true;
    };
}
/** Files beside `file` whose name says they are temporary. */
function tempsBeside(file: string): string[] {
    return fs
        .readdirSync(path.dirname(file))
        .filter((n) => n.endsWith(".tmp") || n.includes(".tmp.") || n.endsWith(".probe"));
}
interface Part {
    node: string;
    start: number;
    size: number;
    type: string;
    uuid?: string;
    name?: string;
}
function partitionsOf(raw: string): { label: string; id: string; partitions: Part[] } {
    return (
        JSON.parse(text("sfdisk", ["-J", raw])) as { partitiontable: { label: string; id: string; partitions: Part[] } }
    ).partitiontable;
}

/** A staging tree: nested dirs, symlinks, a big sparse-ish file, small files, odd names, a hard link. */
function makeTree(root: string): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    const put = (rel: string, data: Buffer, mode = 0o644) => {
        fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
        fs.writeFileSync(path.join(root, rel), data, { mode });
        fs.chmodSync(path.join(root, rel), mode);
        files.set(rel, data);
    };
    put("dists/stable/Release", Buffer.from("Origin: test\nSuite: stable\n"));
    put("dists/stable/main/binary-amd64/Packages", Buffer.from("Package: hello\nVersion: 1.0\n\n".repeat(200)));
    put("pool/main/h/hello/hello_1.0_amd64.deb", randomBytes(300_000));
    put("registry/docker/registry/v2/repositories/library/alpine/_layers/sha256/abc/link", Buffer.from("sha256:abc"));
    put("bin/serve", Buffer.from("#!/bin/sh\nexit 0\n"), 0o755);
    put("name with spaces.txt", Buffer.from("spaces\n"));
    put("empty", Buffer.alloc(0));
    // 48 MiB apparent, 8 MiB of data at 0, 16 and 40 MiB; holes between.
    const big = path.join(root, "images/big.img");
    fs.mkdirSync(path.dirname(big), { recursive: true });
    const fd = fs.openSync(big, "w");
    const bigData = Buffer.alloc(48 * MiB);
    for (const at of [0, 16, 40]) {
        const chunk = randomBytes((8 * MiB) / 3 + 1);
        chunk.copy(bigData, at * MiB);
        fs.writeSync(fd, chunk, 0, chunk.length, at * MiB);
    }
    fs.ftruncateSync(fd, 48 * MiB);
    fs.closeSync(fd);
    files.set("images/big.img", bigData);
    fs.symlinkSync("dists/stable/Release", path.join(root, "Release.link"));
    fs.symlinkSync(`../${"x".repeat(90)}/target`, path.join(root, "bin/long.link"));
    fs.linkSync(path.join(root, "bin/serve"), path.join(root, "bin/serve.hard"));
    files.set("bin/serve.hard", files.get("bin/serve")!);
    fs.mkdirSync(path.join(root, "var/empty/dir"), { recursive: true });
    // A known modification time, which the image keeps.
    fs.utimesSync(path.join(root, "dists/stable/Release"), 1_600_000_000, 1_600_000_000);
    return files;
}

/** A bootable-looking base disk: a partition table (GPT or MBR) with one ext4 "root" partition. */
function makeBase(dir: string, label: "gpt" | "dos"): string {
    const rootTree = path.join(dir, `base-${label}-tree`);
    fs.mkdirSync(path.join(rootTree, "etc"), { recursive: true });
    fs.writeFileSync(path.join(rootTree, "etc/hostname"), "mirror\n");
    const rootFs = path.join(dir, `base-${label}-root.ext4`);
    sh("mke2fs", ["-q", "-F", "-t", "ext4", "-L", "root", "-d", rootTree, rootFs, "20M"]);
    const raw = path.join(dir, `base-${label}.raw`);
    fs.writeFileSync(raw, "");
    fs.truncateSync(raw, 32 * MiB);
    const line =
        label === "gpt" ? 'start=2048, size=20MiB, type=L, name="root"' : "start=2048, size=20MiB, type=83, bootable";
    sh("sfdisk", ["-q", raw], `label: ${label}\n${line}\n`);
    const fd = fs.openSync(raw, "r+");
    fs.writeSync(fd, fs.readFileSync(rootFs), 0, 20 * MiB, MiB);
    fs.closeSync(fd);
    return raw;
}

describe("vm disk images (judged by debugfs, e2fsck, xorriso, isoinfo, qemu-img, sfdisk)", function () {
    this.timeout(600_000);
    let work: string;
    let tree: string;
    let files: Map<string, Buffer>;
    let ext4: string;
    let seed: string;
    const seedText = {
        userData: "#cloud-config\nhostname: mirror\nruncmd:\n  - [systemctl, start, nginx]\n",
        metaData: "instance-id: mirror-1\nlocal-hostname: mirror\n",
        networkConfig: "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n",
    };

    before(async () => {
        work = await makeTempDir("disk");
        tree = path.join(work, "tree");
        files = makeTree(tree);
        ext4 = path.join(work, "data.ext4");
        seed = path.join(work, "seed.iso");
    });

    after(async () => {
        await removeTempDir(work);
    });

    describe("makeExt4", () => {
        it("writes an ext4 that debugfs reads back equal and e2fsck finds clean", async () => {
            const size = await ext4SizeFor(tree);
            assert.ok(size.contentBytes >= 8 * MiB + 300_000, `contentBytes ${size.contentBytes}`);
            assert.ok(size.contentBytes < 40 * MiB, `holes are not content: ${size.contentBytes}`);
            assert.ok(size.inodes >= 20);
            const lines: string[] = [];
            await makeExt4({
                tree,
                out: ext4,
                sizeBytes: size.fsBytes,
                label: "mirror-data",
                uuid: UUID,
                log: (l) => lines.push(l),
            });
            assert.equal(fs.statSync(ext4).size, size.fsBytes);
            assert.ok(lines.some((l) => l.includes("making ext4")));
            assert.deepEqual(tempsBeside(ext4), []);

            const fsck = spawnSync("e2fsck", ["-fn", ext4]);
            assert.equal(fsck.status, 0, fsck.stdout.toString() + fsck.stderr.toString());

            const header = text("dumpe2fs", ["-h", ext4]);
            assert.match(header, /Filesystem volume name:\s+mirror-data/);
            assert.match(header, new RegExp(`Filesystem UUID:\\s+${UUID}`));
            assert.match(header, new RegExp(`Directory Hash Seed:\\s+${UUID}`));
            assert.match(header, /Block size:\s+4096/);

            const top = debugfs(ext4, "ls -l /");
            for (const name of [
                "dists",
                "pool",
                "registry",
                "bin",
                "images",
                "var",
                "Release.link",
                "lost+found",
                "empty",
            ]) {
                assert.match(top, new RegExp(` ${name.replace(/[.+]/g, "\\$&")}\\s*$`, "m"), top);
            }
            assert.match(top, /100644 \(1\) +0 +0 +0 .* empty\s*$/m, "the empty file is there, empty, owned by root");
            assert.match(debugfs(ext4, "ls -l /var/empty"), / dir\s*$/m);
            assert.match(debugfs(ext4, 'stat "/name with spaces.txt"'), /Type: regular +Mode: +0644/);
            for (const [rel, data] of files) {
                if (data.length > 4 * MiB) continue;
                assert.deepEqual(sh("debugfs", ["-R", `cat "/${rel}"`, ext4]), data, rel);
            }
            const dumped = path.join(work, "big.dumped");
            debugfs(ext4, `dump /images/big.img ${dumped}`);
            assert.ok(fs.readFileSync(dumped).equals(files.get("images/big.img")!), "the sparse file reads back equal");

            assert.match(debugfs(ext4, "stat /Release.link"), /Fast link dest: "dists\/stable\/Release"/);
            const out = path.join(work, "rdump");
            fs.mkdirSync(out);
            debugfs(ext4, `rdump / ${out}`);
            assert.equal(fs.readlinkSync(path.join(out, "bin/long.link")), `../${"x".repeat(90)}/target`);
            assert.equal(fs.statSync(path.join(out, "bin/serve")).mode & 0o777, 0o755, "modes are kept");

            const serve = debugfs(ext4, "stat /bin/serve");
            assert.match(serve, /Links: 2/, "the hard link is one inode");
            assert.match(serve, /User:\s+0\s+Group:\s+0/);
            const release = debugfs(ext4, "stat /dists/stable/Release");
            assert.match(release, /mtime: 0x5f5e1000/, "the tree's mtime is kept");
            assert.match(release, /ctime: 0x386d4380/, "ctime is the fixed time (2000-01-01)");
            assert.match(release, /atime: 0x386d4380/);
        });

        it("gives identical bytes for the same tree: twice, after reading and chmod, and from a copy", async () => {
            const size = await ext4SizeFor(tree);
            const opts = { sizeBytes: size.fsBytes, label: "mirror-data", uuid: UUID };
            const a = path.join(work, "a.ext4");
            const b = path.join(work, "b.ext4");
            const c = path.join(work, "c.ext4");
            await makeExt4({ ...opts, tree, out: a });
            // New atimes and ctimes in the tree; same names, contents, modes and mtimes.
            await new Promise((r) => setTimeout(r, 1100));
            for (const rel of files.keys()) {
                fs.readFileSync(path.join(tree, rel));
                fs.chmodSync(path.join(tree, rel), fs.statSync(path.join(tree, rel)).mode & 0o7777);
            }
            await makeExt4({ ...opts, tree, out: b });
            assert.equal(sha(a), sha(b));
            const copy = path.join(work, "tree-copy");
            sh("cp", ["-a", tree, copy]);
            await makeExt4({ ...opts, tree: copy, out: c });
            assert.equal(
                sha(a),
                sha(c),
                "a copy of the tree (other inode numbers, other directory order) gives the same bytes",
            );
            assert.equal(sha(a), sha(ext4));
            // A changed mtime is a different filesystem.
            fs.utimesSync(path.join(copy, "empty"), 1_700_000_000, 1_700_000_000);
            await makeExt4({ ...opts, tree: copy, out: c });
            assert.notEqual(sha(a), sha(c));
            fs.rmSync(copy, { recursive: true });
            for (const f of [a, b, c]) fs.rmSync(f);
        });

        it("fits a tree of many small files and directories in its minimum size, and refuses less", async () => {
            const many = path.join(work, "many");
            for (let d = 0; d < 60; d++) {
                fs.mkdirSync(path.join(many, `dir-${d}`, "sub"), { recursive: true });
                for (let f = 0; f < 80; f++) {
                    fs.writeFileSync(
                        path.join(many, `dir-${d}`, `a-rather-long-file-name-to-fill-directory-blocks-${f}.txt`),
                        `${d}/${f}\n`,
                    );
                }
            }
            for (let f = 0; f < 3000; f++)
                fs.writeFileSync(path.join(many, `flat-${f}`), randomBytes(f % 7 === 0 ? 9000 : 100));
            const size = await ext4SizeFor(many);
            const out = path.join(work, "many.ext4");
            // No headroom at all: the estimate is an upper bound.
            const tight = Math.max(size.minimumBytes, 0);
            await makeExt4({ tree: many, out, sizeBytes: tight, label: "many", uuid: UUID, inodes: size.inodes });
            const fsck = spawnSync("e2fsck", ["-fn", out]);
            assert.equal(fsck.status, 0, fsck.stdout.toString());
            assert.equal(
                sh("debugfs", [
                    "-R",
                    "cat /dir-59/a-rather-long-file-name-to-fill-directory-blocks-79.txt",
                    out,
                ]).toString(),
                "59/79\n",
            );
            // ...and not a wild over-estimate: at most 30 % + 8 MiB above what the filesystem uses.
            const used = /(\d+)\/(\d+) blocks/.exec(fsck.stdout.toString())!;
            assert.ok(tight <= Number(used[1]) * 4096 * 1.3 + 8 * MiB, `${tight} vs ${used[1]} blocks used`);
            await assert.rejects(
                makeExt4({ tree: many, out, sizeBytes: tight - 2 * MiB, label: "many", uuid: UUID }),
                invalid("sizeBytes"),
            );
            fs.rmSync(many, { recursive: true });
            fs.rmSync(out);
        });

        it("refuses bad arguments by name", async () => {
            const base = { tree, out: path.join(work, "x.ext4"), sizeBytes: 128 * MiB, label: "x", uuid: UUID };
            await assert.rejects(makeExt4({ ...base, tree: path.join(work, "nope") }), invalid("tree"));
            await assert.rejects(makeExt4({ ...base, tree: path.join(tree, "empty") }), invalid("tree"));
            await assert.rejects(makeExt4({ ...base, label: "a-label-longer-than-16" }), invalid("label"));
            await assert.rejects(makeExt4({ ...base, uuid: "not-a-uuid" }), invalid("uuid"));
            await assert.rejects(makeExt4({ ...base, sizeBytes: 1000 }), invalid("sizeBytes"));
            await assert.rejects(makeExt4({ ...base, out: path.join(work, "missing/x.ext4") }), invalid("output"));
            assert.equal(fs.existsSync(base.out), false);
        });
    });

    describe("makeSeedIso", () => {
        it("writes a reproducible ISO labelled cidata whose files read back equal", async () => {
            await makeSeedIso({ out: seed, ...seedText });
            const info = text("isoinfo", ["-d", "-i", seed]);
            assert.match(info, /Volume id: cidata\n/);
            assert.match(info, /Rock Ridge/);
            const listing = text("xorriso", ["-indev", seed, "-find", "/", "-type", "f"]);
            assert.deepEqual(listing.trim().split("\n").sort(), ["'/meta-data'", "'/network-config'", "'/user-data'"]);
            const out = path.join(work, "seed-out");
            sh("xorriso", ["-osirrox", "on", "-indev", seed, "-extract", "/", out]);
            assert.equal(fs.readFileSync(path.join(out, "user-data"), "utf8"), seedText.userData);
            assert.equal(fs.readFileSync(path.join(out, "meta-data"), "utf8"), seedText.metaData);
            assert.equal(fs.readFileSync(path.join(out, "network-config"), "utf8"), seedText.networkConfig);
            assert.match(text("isoinfo", ["-l", "-R", "-i", seed]), /-rw-r--r-- +1 +0 +0 .* user-data/);
            fs.rmSync(out, { recursive: true, force: true });

            await new Promise((r) => setTimeout(r, 1100));
            const again = path.join(work, "seed-again.iso");
            await makeSeedIso({ out: again, ...seedText });
            assert.equal(sha(again), sha(seed), "a later build gives the same bytes");
            await makeSeedIso({ out: again, userData: seedText.userData, metaData: seedText.metaData });
            assert.deepEqual(text("xorriso", ["-indev", again, "-find", "/", "-type", "f"]).trim().split("\n").sort(), [
                "'/meta-data'",
                "'/user-data'",
            ]);
            assert.deepEqual(tempsBeside(again), []);
            fs.rmSync(again);
        });

        it("refuses an output directory that is missing or not writable, naming output", async () => {
            await assert.rejects(
                makeSeedIso({ out: path.join(work, "no/such/seed.iso"), ...seedText }),
                invalid("output"),
            );
            // Root may write anywhere: check as an ordinary user (the directory is root's, 0755).
            const locked = path.join(work, "locked");
            fs.mkdirSync(locked, { mode: 0o755 });
            fs.chmodSync(work, 0o755);
            process.seteuid!(65534);
            try {
                await assert.rejects(
                    makeSeedIso({ out: path.join(locked, "seed.iso"), ...seedText }),
                    (err: unknown) => {
                        invalid("output")(err);
                        assert.match((err as Error).message, /not writable \(EACCES\)/);
                        return true;
                    },
                );
            } finally {
                process.seteuid!(0);
                fs.chmodSync(work, 0o700);
            }
            assert.deepEqual(fs.readdirSync(locked), []);
        });
    });

    describe("inspectImage", () => {
        it("reads qcow2 and raw, refuses other formats and missing files by name", async () => {
            const q = path.join(work, "i.qcow2");
            sh("qemu-img", ["create", "-q", "-f", "qcow2", q, "64M"]);
            assert.deepEqual(
                { ...(await inspectImage("baseImage", q)), actualSize: 0 },
                { format: "qcow2", virtualSize: 64 * MiB, actualSize: 0 },
            );
            assert.equal((await inspectImage("baseImage", ext4)).format, "raw");
            const vmdk = path.join(work, "i.vmdk");
            sh("qemu-img", ["create", "-q", "-f", "vmdk", vmdk, "64M"]);
            await assert.rejects(inspectImage("baseImage", vmdk), (err: unknown) => {
                invalid("baseImage")(err);
                assert.match((err as Error).message, /vmdk/);
                return true;
            });
            await assert.rejects(inspectImage("baseImage", path.join(work, "nope.qcow2")), invalid("baseImage"));
            await assert.rejects(inspectImage("baseImage", work), invalid("baseImage"));
            fs.rmSync(q);
            fs.rmSync(vmdk);
        });
    });

    describe("assembleImage", () => {
        it("without a base: a qcow2 data disk that converts back to the same ext4", async () => {
            const out = path.join(work, "data.qcow2");
            const r = await assembleImage({
                out,
                workDir: work,
                partitions: [{ file: ext4, name: "data" }],
                log: () => {},
            });
            const info = JSON.parse(text("qemu-img", ["info", "--output=json", out])) as Record<string, unknown>;
            assert.equal(info["format"], "qcow2");
            assert.equal(info["virtual-size"], fs.statSync(ext4).size);
            assert.equal(r.virtualSizeBytes, fs.statSync(ext4).size);
            assert.equal(r.sha256, sha(out));
            assert.equal(spawnSync("qemu-img", ["check", out]).status, 0);
            const back = path.join(work, "data.back.raw");
            sh("qemu-img", ["convert", "-O", "raw", out, back]);
            assert.equal(sha(back), sha(ext4));
            assert.equal(
                sh("debugfs", ["-R", "cat /dists/stable/Release", back]).toString(),
                "Origin: test\nSuite: stable\n",
            );
            assert.deepEqual(tempsBeside(out), []);
            assert.deepEqual(
                fs.readdirSync(work).filter((n) => n.startsWith("assemble-")),
                [],
                "the work directory is cleaned",
            );
            fs.rmSync(back);
        });

        for (const variant of ["gpt raw", "gpt qcow2", "dos raw"] as const) {
            it(`onto a ${variant} base: the base partition unchanged plus the data and seed partitions`, async () => {
                if (!fs.existsSync(seed)) await makeSeedIso({ out: seed, ...seedText });
                const label = variant.startsWith("gpt") ? "gpt" : "dos";
                let base = makeBase(work, label);
                const baseRaw = base;
                if (variant.endsWith("qcow2")) {
                    base = `${baseRaw}.qcow2`;
                    sh("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", baseRaw, base]);
                }
                const out = path.join(work, `full-${label}.qcow2`);
                const lines: string[] = [];
                const r = await assembleImage({
                    out,
                    workDir: work,
                    base,
                    partitions: [
                        { file: ext4, name: "mirror-data" },
                        { file: seed, name: "cidata" },
                    ],
                    compress: variant === "gpt qcow2",
                    log: (l) => lines.push(l),
                });
                assert.ok(
                    lines.some((l) => l.includes("converting base")),
                    lines.join("\n"),
                );
                assert.equal(r.sha256, sha(out));
                assert.equal(JSON.parse(text("qemu-img", ["info", "--output=json", out]))["format"], "qcow2");
                assert.equal(spawnSync("qemu-img", ["check", out]).status, 0);

                const raw = path.join(work, `full-${label}.raw`);
                sh("qemu-img", ["convert", "-O", "raw", out, raw]);
                assert.equal(fs.statSync(raw).size, r.virtualSizeBytes);
                const verify = spawnSync("sfdisk", ["--verify", raw]);
                assert.equal(verify.status, 0, verify.stdout.toString() + verify.stderr.toString());
                assert.doesNotMatch(verify.stdout.toString() + verify.stderr.toString(), /not on the end|mismatch/i);
                const before = partitionsOf(baseRaw);
                const after = partitionsOf(raw);
                assert.equal(after.label, label);
                assert.equal(after.id, before.id);
                assert.equal(after.partitions.length, 3);
                const [root, data, cidata] = after.partitions as [Part, Part, Part];
                const { node: _a, ...rootKeep } = before.partitions[0]!;
                const { node: _b, ...rootNow } = root;
                assert.deepEqual(rootNow, rootKeep, "the base partition's entry is unchanged");
                assert.ok(
                    slice(raw, root.start * 512, root.size * 512).equals(
                        slice(baseRaw, root.start * 512, root.size * 512),
                    ),
                    "the base partition's bytes are unchanged",
                );
                if (label === "gpt") {
                    assert.equal(data.name, "mirror-data");
                    assert.equal(cidata.name, "cidata");
                    assert.equal(data.type, "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
                }
                assert.ok(data.start >= root.start + root.size && cidata.start >= data.start + data.size);
                assert.equal(data.start % 2048, 0, "1 MiB aligned");
                assert.ok(data.size * 512 >= fs.statSync(ext4).size);

                const dataOut = path.join(work, `part-data-${label}.ext4`);
                fs.writeFileSync(dataOut, slice(raw, data.start * 512, fs.statSync(ext4).size));
                assert.equal(sha(dataOut), sha(ext4), "the data partition holds the ext4 byte for byte");
                assert.equal(spawnSync("e2fsck", ["-fn", dataOut]).status, 0);
                assert.equal(
                    sh("debugfs", ["-R", "cat /pool/main/h/hello/hello_1.0_amd64.deb", dataOut]).equals(
                        files.get("pool/main/h/hello/hello_1.0_amd64.deb")!,
                    ),
                    true,
                );
                const seedOut = path.join(work, `part-seed-${label}.iso`);
                fs.writeFileSync(seedOut, slice(raw, cidata.start * 512, cidata.size * 512));
                assert.match(text("isoinfo", ["-d", "-i", seedOut]), /Volume id: cidata\n/);
                const extracted = path.join(work, `seed-${label}`);
                sh("xorriso", ["-osirrox", "on", "-indev", seedOut, "-extract", "/", extracted]);
                assert.equal(fs.readFileSync(path.join(extracted, "user-data"), "utf8"), seedText.userData);
                assert.equal(
                    text("blkid", [
                        "-o",
                        "value",
                        "-s",
                        "LABEL",
                        "--probe",
                        "--offset",
                        String(cidata.start * 512),
                        raw,
                    ]).trim(),
                    "cidata",
                    "blkid finds the seed by label, as cloud-init does",
                );

                // Same inputs, same image.
                const again = path.join(work, `again-${label}.qcow2`);
                const r2 = await assembleImage({
                    out: again,
                    workDir: work,
                    base,
                    partitions: [
                        { file: ext4, name: "mirror-data" },
                        { file: seed, name: "cidata" },
                    ],
                    compress: variant === "gpt qcow2",
                    log: () => {},
                });
                assert.equal(r2.sha256, r.sha256, "assembling twice gives the same qcow2");
                for (const f of [raw, dataOut, seedOut, again, out]) fs.rmSync(f);
                fs.rmSync(extracted, { recursive: true });
                assert.deepEqual(
                    fs.readdirSync(work).filter((n) => n.startsWith("assemble-") || n.endsWith(".tmp")),
                    [],
                );
            });
        }

        it("refuses bad bases, partitions and places by name", async () => {
            const out = path.join(work, "bad.qcow2");
            const parts = [{ file: ext4, name: "data" }];
            const quiet = { log: () => {} };
            await assert.rejects(
                assembleImage({ out, workDir: work, base: path.join(work, "nope.qcow2"), partitions: parts, ...quiet }),
                invalid("baseImage"),
            );
            const textFile = path.join(work, "notes.txt");
            fs.writeFileSync(textFile, "this is not a disk image\n");
            // qemu-img reads any file as raw; it has no partition table.
            assert.equal((await inspectImage("baseImage", textFile)).format, "raw");
            await assert.rejects(
                assembleImage({ out, workDir: work, base: textFile, partitions: parts, ...quiet }),
                (err: unknown) => {
                    invalid("baseImage")(err);
                    assert.match((err as Error).message, /no partition table/);
                    return true;
                },
            );
            // A filesystem without a partition table is not a bootable disk either.
            await assert.rejects(
                assembleImage({ out, workDir: work, base: ext4, partitions: parts, ...quiet }),
                invalid("baseImage"),
            );
            const vmdk = path.join(work, "base.vmdk");
            sh("qemu-img", ["create", "-q", "-f", "vmdk", vmdk, "64M"]);
            await assert.rejects(
                assembleImage({ out, workDir: work, base: vmdk, partitions: parts, ...quiet }),
                invalid("baseImage"),
            );
            await assert.rejects(
                assembleImage({ out: path.join(work, "missing/x.qcow2"), workDir: work, partitions: parts, ...quiet }),
                invalid("output"),
            );
            await assert.rejects(
                assembleImage({ out, workDir: path.join(work, "no-work"), partitions: parts, ...quiet }),
                invalid("workDir"),
            );
            await assert.rejects(
                assembleImage({
                    out,
                    workDir: work,
                    partitions: [{ file: path.join(work, "nope.ext4"), name: "data" }],
                    ...quiet,
                }),
                invalid("partitions[0].file"),
            );
            await assert.rejects(
                assembleImage({ out, workDir: work, partitions: [{ file: ext4, name: 'bad"name' }], ...quiet }),
                invalid("partitions[0].name"),
            );
            await assert.rejects(
                assembleImage({ out, workDir: work, partitions: [...parts, { file: seed, name: "seed" }], ...quiet }),
                invalid("partitions"),
            );
            assert.equal(fs.existsSync(out), false);
            assert.deepEqual(tempsBeside(out), []);
            fs.rmSync(textFile);
            fs.rmSync(vmdk);
        });

        it("a build that fails or is aborted midway leaves the previous output byte-identical and no temporary file", async () => {
            const out = path.join(work, "keep.qcow2");
            await assembleImage({ out, workDir: work, partitions: [{ file: seed, name: "seed" }], log: () => {} });
            const previous = sha(out);
            const base = makeBase(work, "gpt");

            // A partition file that is missing.
            await assert.rejects(
                assembleImage({
                    out,
                    workDir: work,
                    base,
                    partitions: [
                        { file: ext4, name: "data" },
                        { file: path.join(work, "gone.iso"), name: "seed" },
                    ],
                    log: () => {},
                }),
                invalid("partitions[1].file"),
            );
            assert.equal(sha(out), previous);

            // Aborted while qemu-img writes the qcow2 (compressing incompressible data is slow).
            const noise = path.join(work, "noise.img");
            const fd = fs.openSync(noise, "w");
            for (let i = 0; i < 24; i++) fs.writeSync(fd, randomBytes(8 * MiB));
            fs.closeSync(fd);
            const controller = new AbortController();
            const seen: string[] = [];
            const watcher = setInterval(() => {
                const temps = tempsBeside(out);
                if (temps.length > 0 && fs.statSync(path.join(work, temps[0]!)).size > 0) {
                    seen.push(...temps);
                    controller.abort(new Error("stopped by the test"));
                    clearInterval(watcher);
                }
            }, 20);
            const started = Date.now();
            try {
                await assert.rejects(
                    assembleImage({
                        out,
                        workDir: work,
                        base,
                        partitions: [{ file: noise, name: "noise" }],
                        compress: true,
                        signal: controller.signal,
                        log: () => {},
                    }),
                    /stopped by the test/,
                );
            } finally {
                clearInterval(watcher);
            }
            assert.ok(seen.length > 0, "the abort came while the temporary qcow2 was being written");
            assert.ok(Date.now() - started < 60_000);
            assert.equal(sha(out), previous, "the previous output is byte-identical");
            assert.deepEqual(tempsBeside(out), [], "no temporary file is left");
            assert.deepEqual(
                fs.readdirSync(work).filter((n) => n.startsWith("assemble-")),
                [],
            );
            fs.rmSync(noise);
        });

        it("a killed build leaves the previous output intact; the next build removes its stale temporary file", async () => {
            const out = path.join(work, "killed.qcow2");
            await assembleImage({ out, workDir: work, partitions: [{ file: seed, name: "seed" }], log: () => {} });
            const previous = sha(out);
            const noise = path.join(work, "noise2.img");
            const fd = fs.openSync(noise, "w");
            for (let i = 0; i < 24; i++) fs.writeSync(fd, randomBytes(8 * MiB));
            fs.closeSync(fd);
            const script = path.join(work, "build.js");
            const module = path.resolve(__dirname, "../../../provider/vm/disk.js");
            fs.writeFileSync(
                script,
                `require(${JSON.stringify(module)}).assembleImage(${JSON.stringify({
                    out,
                    workDir: work,
                    partitions: [{ file: noise, name: "noise" }],
                    compress: true,
                })}).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });\n`,
            );
            // Its own process group, so that qemu-img dies with it, as when a machine loses power.
            const child = spawn(process.execPath, [script], { detached: true, stdio: "ignore" });
            const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
            try {
                const deadline = Date.now() + 60_000;
                for (;;) {
                    const temps = tempsBeside(out);
                    if (temps.length > 0 && fs.statSync(path.join(work, temps[0]!)).size > 0) break;
                    assert.ok(Date.now() < deadline, "the build never started writing");
                    await new Promise((r) => setTimeout(r, 20));
                }
            } finally {
                process.kill(-child.pid!, "SIGKILL");
                await exited;
            }
            assert.equal(sha(out), previous, "the previous output is byte-identical");
            const left = tempsBeside(out);
            assert.equal(left.length, 1, "a killed process cannot clean up");
            // Once it is old enough to be nobody's, the next build removes it.
            const old = (Date.now() - 3600_000) / 1000;
            fs.utimesSync(path.join(work, left[0]!), old, old);
            const lines: string[] = [];
            await assembleImage({
                out,
                workDir: work,
                partitions: [{ file: ext4, name: "data" }],
                log: (l) => lines.push(l),
            });
            assert.deepEqual(tempsBeside(out), []);
            assert.ok(
                lines.some((l) => l.includes("left by a build that was killed")),
                lines.join("\n"),
            );
            assert.notEqual(sha(out), previous);
            for (const n of fs.readdirSync(work).filter((n) => n.startsWith("assemble-"))) {
                fs.rmSync(path.join(work, n), { recursive: true, force: true });
            }
            fs.rmSync(noise);
            fs.rmSync(script);
        });
    });

    it("builds a mirror image from ~500 MB of content (timed)", async function () {
        if (process.env["AIRGAP_SKIP_SLOW"] === "1") this.skip();
        const big = path.join(work, "big-tree");
        // 400 incompressible .debs of ~1.25 MB, and 2000 small index-like files.
        for (let i = 0; i < 400; i++) {
            const dir = path.join(big, "pool/main", `p${i % 40}`);
            fs.mkdirSync(dir, { recursive: true });
            fs.writeFileSync(path.join(dir, `pkg${i}_1.0_amd64.deb`), randomBytes(1_250_000));
        }
        for (let i = 0; i < 2000; i++) {
            const dir = path.join(big, "dists/stable/main/i18n", `d${i % 50}`);
            fs.mkdirSync(dir, { recursive: true });
            fs.writeFileSync(path.join(dir, `Translation-${i}`), `Package: p${i}\nDescription: test\n`.repeat(20));
        }
        const times: Record<string, number> = {};
        const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
            const t = Date.now();
            const r = await f();
            times[name] = (Date.now() - t) / 1000;
            return r;
        };
        const size = await timed("ext4SizeFor", () => ext4SizeFor(big));
        const data = path.join(work, "big.ext4");
        await timed("makeExt4", () =>
            makeExt4({ tree: big, out: data, sizeBytes: size.fsBytes, label: "mirror-data", uuid: UUID }),
        );
        const bigSeed = path.join(work, "big-seed.iso");
        await timed("makeSeedIso", () => makeSeedIso({ out: bigSeed, ...seedText }));
        const base = makeBase(work, "gpt");
        const out = path.join(work, "mirror.qcow2");
        const partitions = [
            { file: data, name: "mirror-data" },
            { file: bigSeed, name: "cidata" },
        ];
        const plain = await timed("assembleImage", () =>
            assembleImage({ out, workDir: work, base, partitions, log: () => {} }),
        );
        const packed = path.join(work, "mirror-compressed.qcow2");
        const compressed = await timed("assembleImage compress", () =>
            assembleImage({ out: packed, workDir: work, base, partitions, compress: true, log: () => {} }),
        );
        console.log(
            `      ~500 MB tree (${(size.contentBytes / MiB).toFixed(0)} MiB content, fs ${(size.fsBytes / MiB).toFixed(0)} MiB): ${Object.entries(
                times,
            )
                .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
                .join(
                    ", ",
                )}; qcow2 ${(plain.actualSizeBytes / MiB).toFixed(0)} MiB, compressed ${(compressed.actualSizeBytes / MiB).toFixed(0)} MiB`,
        );
        assert.ok(size.contentBytes > 500_000_000);
        assert.equal(spawnSync("e2fsck", ["-fn", data]).status, 0);
        assert.equal(spawnSync("qemu-img", ["check", out]).status, 0);
        assert.ok(plain.actualSizeBytes > 500_000_000 && plain.actualSizeBytes < size.fsBytes + 64 * MiB);
        fs.rmSync(big, { recursive: true });
        for (const f of [data, bigSeed, out, packed]) fs.rmSync(f);
    });
});
