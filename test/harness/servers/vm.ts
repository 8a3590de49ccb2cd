/**
 * Boots a qcow2 disk under KVM with QEMU user networking and TCP ports forwarded from
 * 127.0.0.1, for tests that reach a VM's services from the host.
 *
 * The caller's disk is never written: the VM runs on a temporary qcow2 overlay backed by it.
 * The serial console goes to a log file that `console()` reads. The test that boots a VM MUST
 * call `close()` (in `after`/`finally`); a VM still running when the test process exits is
 * killed then, and every VM is killed after `timeoutMs` in any case.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import * as path from "node:path";
import { request } from "undici";
import type { VmBase } from "../fixtures/vmbase";
import { makeTempDir, removeTempDir } from "../tmp";
import { freePort, run } from "./process";

export interface BootVmOptions {
    /** The qcow2 disk to boot. It is not modified: the VM writes to an overlay. */
    disk: string;
    /** The base the disk was made from: how it boots (its own bootloader or direct kernel). */
    base: VmBase;
    /** Guest TCP ports to forward from 127.0.0.1. */
    forwards: number[];
    /** Defaults to 1024. */
    memoryMiB?: number;
    /** The VM is killed after this long, whatever happens. Defaults to 15 minutes. */
    timeoutMs?: number;
    /** Defaults to 2 (or 1 on a single-CPU machine). */
    cpus?: number;
    /** Defaults to `vmAccel()`. */
    accel?: "kvm" | "tcg";
}

export interface RunningVm {
    /** The accelerator the VM runs with. */
    accel: "kvm" | "tcg";
    /** Guest port → host port on 127.0.0.1. */
    ports: Record<number, number>;
    /** Everything the guest wrote to its serial console so far, plus QEMU's own messages. */
    console(): string;
    /** The last `lines` lines of `console()`, for assertion messages. */
    consoleTail(lines?: number): string;
    /** Set once QEMU has exited. */
    readonly exited: boolean;
    /** Kills the VM and removes its overlay and log. */
    close(): Promise<void>;
}

/**
 * How VMs run on this machine: KVM where /dev/kvm is a hardware-assisted KVM; TCG (emulation)
 * where /dev/kvm is missing, or where it is PVM (module kvm_pvm, KVM without hardware
 * virtualization, as in nested sandboxes): there a stock Debian kernel takes minutes to print
 * its first line, while TCG boots it to login in about a minute. `AIRGAP_VM_ACCEL=kvm|tcg`
 * overrides the choice.
 */
export function vmAccel(): { accel: "kvm" | "tcg"; reason: string } {
    const forced = process.env["AIRGAP_VM_ACCEL"];
    if (forced === "kvm" || forced === "tcg") return { accel: forced, reason: "AIRGAP_VM_ACCEL" };
    try {
        fs.accessSync("/dev/kvm", fs.constants.R_OK | fs.constants.W_OK);
    } catch {
        return { accel: "tcg", reason: "/dev/kvm is missing or not usable" };
    }
    const hardware = ["kvm_intel", "kvm_amd"].some((m) => fs.existsSync(`/sys/module/${m}`));
    if (!hardware && fs.existsSync("/sys/module/kvm_pvm")) {
        return {
            accel: "tcg",
            reason: "/dev/kvm is PVM (kvm_pvm, no hardware virtualization), far slower than TCG for a stock kernel",
        };
    }
    return { accel: "kvm", reason: "/dev/kvm" };
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
    for (const child of running) child.kill("SIGKILL");
});

/** True while something holds `port` on 127.0.0.1 (binding it fails). */
function portTaken(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const server = createServer();
        server.once("error", () => resolve(true));
        server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(false)));
    });
}

export async function bootVm(opts: BootVmOptions): Promise<RunningVm> {
    if (!fs.existsSync(opts.disk)) throw new Error(`disk: ${opts.disk} does not exist`);
    for (const p of opts.forwards) {
        if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`forwards: ${p} is not a TCP port`);
    }
    const dir = await makeTempDir("vm");
    const overlay = path.join(dir, "overlay.qcow2");
    const consoleLog = path.join(dir, "console.log");
    await run("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", path.resolve(opts.disk), overlay]);
    const cpus = opts.cpus ?? Math.min(2, availableParallelism());
    const accel = opts.accel ?? vmAccel().accel;

    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
        const ports: Record<number, number> = {};
        for (const guest of opts.forwards) ports[guest] = await freePort();
        const hostfwd = opts.forwards.map((g) => `,hostfwd=tcp:127.0.0.1:${ports[g]}-:${g}`).join("");
        await fsp.writeFile(consoleLog, "");
        const args = [
            ...(accel === "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg,thread=multi", "-cpu", "max"]),
            "-m",
            String(opts.memoryMiB ?? 1024),
            "-smp",
            String(cpus),
            "-nodefaults",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            `file:${consoleLog}`,
            "-no-reboot",
            "-drive",
            `file=${overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap`,
            "-netdev",
            `user,id=n0${hostfwd}`,
            "-device",
            "virtio-net-pci,netdev=n0",
            "-device",
            "virtio-rng-pci",
        ];
        if (opts.base.kernel !== undefined) {
            args.push("-kernel", opts.base.kernel);
            if (opts.base.initrd !== undefined) args.push("-initrd", opts.base.initrd);
            args.push("-append", opts.base.cmdline ?? "root=LABEL=rootfs ro console=ttyS0,115200");
        }
        const child = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
        const output: Buffer[] = [];
        child.stdout?.on("data", (b: Buffer) => output.push(b));
        child.stderr?.on("data", (b: Buffer) => output.push(b));
        let exited = false;
        const exitedP = new Promise<void>((resolve) => {
            child.once("error", (err) => {
                output.push(Buffer.from(`\n[qemu-system-x86_64: ${err.message}]\n`));
                exited = true;
                resolve();
            });
            child.once("exit", () => {
                exited = true;
                resolve();
            });
        });
        running.add(child);
        const killTimer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 15 * 60_000);
        killTimer.unref();
        const qemuOutput = () => Buffer.concat(output).toString("utf8");

        // QEMU binds the forwarded ports before the guest runs; it exits at once when one is taken.
        const deadline = Date.now() + 15_000;
        let up = false;
        while (!exited && Date.now() < deadline) {
            const taken = await Promise.all(opts.forwards.map((g) => portTaken(ports[g]!)));
            if (taken.every(Boolean) && !exited) {
                up = true;
                break;
            }
            await new Promise((r) => setTimeout(r, 50));
        }
        if (up) {
            const readConsole = () => {
                let text = "";
                try {
                    text = fs.readFileSync(consoleLog, "utf8");
                } catch {
                    // removed by close()
                }
                const extra = qemuOutput();
                return extra === "" ? text : `${text}\n--- qemu ---\n${extra}`;
            };
            let closed = false;
            return {
                accel,
                ports,
                console: readConsole,
                consoleTail: (lines = 60) => readConsole().replace(/\r/g, "").split("\n").slice(-lines).join("\n"),
                get exited() {
                    return exited;
                },
                async close() {
                    if (closed) return;
                    closed = true;
                    clearTimeout(killTimer);
                    if (!exited) child.kill("SIGKILL");
                    await exitedP;
                    running.delete(child);
                    await removeTempDir(dir);
                },
            };
        }
        clearTimeout(killTimer);
        if (!exited) child.kill("SIGKILL");
        await exitedP;
        running.delete(child);
        lastError = new Error(`qemu-system-x86_64 did not start:\n${qemuOutput()}`);
        if (!/hostfwd|host forwarding|address already in use/i.test(qemuOutput())) break;
    }
    await removeTempDir(dir);
    throw lastError ?? new Error("qemu-system-x86_64 did not start");
}

export interface HttpAnswer {
    status: number;
    body: string;
}

/**
 * Polls `url` until it answers with any HTTP status, and returns that answer. Connection
 * errors (nothing listening yet, QEMU resetting a forwarded connection) count as "not yet".
 * With `vm`, stops early when the VM has exited. The timeout error carries the console tail.
 */
export async function waitForHttp(
    url: string,
    timeoutMs: number,
    options: { vm?: RunningVm; until?: (answer: HttpAnswer) => boolean } = {},
): Promise<HttpAnswer> {
    const deadline = Date.now() + timeoutMs;
    let last = "no attempt";
    for (;;) {
        if (options.vm?.exited) {
            throw new Error(`the VM exited while waiting for ${url}\n--- console ---\n${options.vm.consoleTail()}`);
        }
        try {
            const response = await request(url, {
                headersTimeout: 5_000,
                bodyTimeout: 5_000,
                signal: AbortSignal.timeout(8_000),
            });
            const answer = { status: response.statusCode, body: await response.body.text() };
            if (options.until === undefined || options.until(answer)) return answer;
            last = `answered ${answer.status}`;
        } catch (err) {
            last = (err as Error).message;
        }
        if (Date.now() >= deadline) {
            const tail = options.vm === undefined ? "" : `\n--- console ---\n${options.vm.consoleTail()}`;
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${url} (last: ${last})${tail}`);
        }
        await new Promise((r) => setTimeout(r, 250));
    }
}
