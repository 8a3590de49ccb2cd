import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { debianVmBase, type VmBase } from "../../harness/fixtures/vmbase";
import { run } from "../../harness/servers/process";
import { bootVm, type RunningVm, vmAccel, waitForHttp } from "../../harness/servers/vm";
import { cleanupAll, makeTempDir } from "../../harness/tmp";

/**
 * The VM harness end to end: the Debian base image (debootstrap of the machine's archive)
 * gets a NoCloud seed appended as a partition, the way the mirror VM image carries it, and
 * boots under KVM. The seed's user-data writes a file into nginx's web root; fetching it from
 * the host through the forwarded port proves that cloud-init found and ran our seed, that the
 * guest's network came up and that port forwarding works.
 */

const LINUX_DATA = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
const MiB = 1024 * 1024;

interface SfdiskPartition {
    node: string;
    start: number;
    size: number;
    name?: string;
}

/**
 * A copy of `base` as qcow2 with `iso` in a partition appended after the last one (the GPT
 * backup header moved to the new end), nothing mounted.
 */
async function appendSeedPartition(base: string, iso: string, out: string, work: string): Promise<void> {
    const raw = path.join(work, "disk.raw");
    await run("qemu-img", ["convert", "-f", "qcow2", "-O", "raw", base, raw], { timeoutMs: 600_000 });
    const isoBytes = (await fsp.stat(iso)).size;
    const partBytes = Math.ceil(isoBytes / MiB) * MiB;
    await fsp.truncate(raw, (await fsp.stat(raw)).size + partBytes + MiB);
    await run("sfdisk", ["--no-reread", "--no-tell-kernel", "--relocate", "gpt-bak-std", raw]);
    await run("sfdisk", ["--no-reread", "--no-tell-kernel", "--append", raw], {
        input: `size=${partBytes / 512}, type=${LINUX_DATA}, name="cidata"\n`,
    });
    const table = JSON.parse((await run("sfdisk", ["-J", raw])).stdout) as {
        partitiontable: { partitions: SfdiskPartition[] };
    };
    const seed = table.partitiontable.partitions.find((p) => p.name === "cidata");
    assert.ok(seed, `sfdisk did not append the seed partition: ${JSON.stringify(table)}`);
    const fd = await fsp.open(raw, "r+");
    try {
        await fd.write(await fsp.readFile(iso), 0, isoBytes, seed.start * 512);
    } finally {
        await fd.close();
    }
    await run("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", raw, out], { timeoutMs: 600_000 });
    await fsp.rm(raw, { force: true });
}

describe("vm: Debian base image boots under KVM with a NoCloud seed partition", function () {
    this.timeout(45 * 60_000);
    let base: VmBase;
    let work: string;
    let vm: RunningVm | undefined;

    before(async function () {
        if (!fs.existsSync("/dev/kvm")) {
            console.log("      skipped: /dev/kvm does not exist");
            this.skip();
        }
        for (const tool of ["qemu-system-x86_64", "xorriso"]) {
            if ((await run("sh", ["-c", `command -v ${tool}`], { check: false })).code !== 0) {
                console.log(`      skipped: ${tool} is not installed (run scripts/install-system.sh)`);
                this.skip();
            }
        }
        const t0 = Date.now();
        const made = await debianVmBase();
        if (typeof made === "string") {
            console.log(`      skipped: the VM base image cannot be made: ${made}`);
            this.skip();
        }
        base = made;
        const size = (await fsp.stat(base.image)).size;
        console.log(
            `      base image ${base.suite}: ${((Date.now() - t0) / 1000).toFixed(1)} s to get, ` +
                `${(size / MiB).toFixed(0)} MiB qcow2, ${base.kernel === undefined ? "boots through its own GRUB" : "direct kernel boot"}`,
        );
        work = await makeTempDir("vm-boot");
    });

    afterEach(async () => {
        await vm?.close();
        vm = undefined;
    });

    after(cleanupAll);

    it("serves a file written by the seed's user-data on the forwarded port 80", async () => {
        const token = `airgap-probe ${randomBytes(12).toString("hex")}`;
        const seedDir = path.join(work, "seed");
        await fsp.mkdir(seedDir);
        await fsp.writeFile(
            path.join(seedDir, "meta-data"),
            `instance-id: boot-spec-${randomBytes(4).toString("hex")}\nlocal-hostname: airgap-boot\n`,
        );
        await fsp.writeFile(
            path.join(seedDir, "user-data"),
            [
                "#cloud-config",
                "write_files:",
                "  - path: /var/www/html/probe.txt",
                "    permissions: '0644'",
                `    content: ${JSON.stringify(`${token}\n`)}`,
                "runcmd:",
                "  - [systemctl, enable, --now, nginx.service]",
                "",
            ].join("\n"),
        );
        const iso = path.join(work, "seed.iso");
        await run("xorriso", ["-as", "mkisofs", "-quiet", "-V", "cidata", "-J", "-r", "-o", iso, seedDir]);
        const disk = path.join(work, "disk.qcow2");
        await appendSeedPartition(base.image, iso, disk, work);
        const before = await fsp.stat(disk);
        const baseBefore = await fsp.stat(base.image);

        const accel = vmAccel();
        console.log(`      accelerator: ${accel.accel} (${accel.reason})`);
        const t0 = Date.now();
        vm = await bootVm({ disk, base, forwards: [80], memoryMiB: 1024, accel: accel.accel });
        const url = `http://127.0.0.1:${vm.ports[80]}/probe.txt`;
        let answer: { status: number; body: string };
        try {
            answer = await waitForHttp(url, accel.accel === "kvm" ? 180_000 : 420_000, {
                vm,
                until: (a) => a.status === 200,
            });
        } catch (err) {
            assert.fail(`${(err as Error).message}`);
        }
        const servingMs = Date.now() - t0;
        console.log(`      boot to serving: ${(servingMs / 1000).toFixed(1)} s`);
        assert.equal(answer.body, `${token}\n`, `unexpected body from ${url}\n--- console ---\n${vm.consoleTail()}`);
        const console_ = vm.console();
        assert.match(console_, /cloud-init/i, "the console log does not show cloud-init running");

        await vm.close();
        vm = undefined;
        const after = await fsp.stat(disk);
        const baseAfter = await fsp.stat(base.image);
        assert.equal(after.mtimeMs, before.mtimeMs, "booting wrote to the caller's disk");
        assert.equal(baseAfter.mtimeMs, baseBefore.mtimeMs, "booting wrote to the base image");
    });

    it("refuses a disk that does not exist, naming the argument", async () => {
        await assert.rejects(
            bootVm({ disk: path.join(work, "missing.qcow2"), base, forwards: [80] }),
            /^Error: disk: .*missing\.qcow2 does not exist/,
        );
    });
});
