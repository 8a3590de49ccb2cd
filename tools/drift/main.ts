#!/usr/bin/env node
/**
 * `pulumi-airgap drift [--stack <name>] [--cwd <dir>]`: runs
 * `pulumi preview --refresh --expect-no-changes --json` and prints what drifted, per resource,
 * and whether upstream moved or the site drifted. Exit 0 when clean, 1 on drift, 2 on error
 * (the preview failed, e.g. upstream unreachable: that is not drift).
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { EXIT_CODES, formatReport, type PreviewJson, summarizePreview } from "./summary";

export interface DriftOptions {
    stack?: string;
    cwd: string;
}

const USAGE = "usage: pulumi-airgap drift [--stack <name>] [--cwd <dir>]";

/** The text `--help` prints. */
export const HELP = `${USAGE}

Runs \`pulumi preview --refresh --expect-no-changes --json\` in the program directory (--cwd,
default: here) on the stack (--stack, default: the selected one) and prints what drifted, per
resource, and whether upstream moved or the site drifted.
Exit status: 0 clean, 1 drift, 2 error (the preview failed, e.g. upstream unreachable).
`;

/** Whether the command line asks for the help text (`--help`, `-h` or `help`, anywhere). */
export function wantsHelp(argv: readonly string[]): boolean {
    return argv[0] === "help" || argv.some((a) => a === "--help" || a === "-h");
}

/** Parses the command line (without node and the script); throws a usage error. */
export function parseDriftArgs(argv: readonly string[], cwd: string): DriftOptions {
    const [command, ...rest] = argv;
    if (command !== "drift") {
        throw new Error(command === undefined ? USAGE : `unknown command ${JSON.stringify(command)}\n${USAGE}`);
    }
    const options: DriftOptions = { cwd };
    for (let i = 0; i < rest.length; i++) {
        const arg = rest[i];
        const [flag, inline] = arg.includes("=")
            ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
            : [arg];
        const value = () => {
            const v = inline ?? rest[++i];
            if (v === undefined || v === "") {
                throw new Error(`${flag} needs a value\n${USAGE}`);
            }
            return v;
        };
        if (flag === "--stack" || flag === "-s") {
            options.stack = value();
        } else if (flag === "--cwd" || flag === "-C") {
            options.cwd = path.resolve(cwd, value());
        } else {
            throw new Error(`unknown option ${JSON.stringify(arg)}\n${USAGE}`);
        }
    }
    return options;
}

function executable(file: string): boolean {
    try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
    } catch {
        return false;
    }
}

/**
 * The pulumi binary: on PATH, else `.tools/bin/pulumi` of the project (the directory `from` or
 * one above it), else of this package.
 */
export function findPulumi(from: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
    for (const dir of (env.PATH ?? "").split(path.delimiter)) {
        if (dir !== "" && executable(path.join(dir, "pulumi"))) {
            return path.join(dir, "pulumi");
        }
    }
    for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
        const candidate = path.join(dir, ".tools", "bin", "pulumi");
        if (executable(candidate)) {
            return candidate;
        }
        if (path.dirname(dir) === dir) {
            break;
        }
    }
    const own = path.resolve(__dirname, "..", "..", "..", ".tools", "bin", "pulumi");
    return executable(own) ? own : undefined;
}

interface Ran {
    code: number | null;
    stdout: string;
    stderr: string;
}

function runPulumi(bin: string, args: string[], cwd: string): Promise<Ran> {
    return new Promise((resolve, reject) => {
        // The language host and plugins next to the binary are found first, as the CLI expects.
        const env = { ...process.env, PATH: `${path.dirname(bin)}${path.delimiter}${process.env.PATH ?? ""}` };
        const child = spawn(bin, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (d: Buffer) => out.push(d));
        child.stderr.on("data", (d: Buffer) => {
            err.push(d);
        });
        child.on("error", reject);
        child.on("close", (code) =>
            resolve({ code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }),
        );
    });
}

/** The JSON document in the CLI's output (it may print lines before it). */
export function extractJson(stdout: string): PreviewJson | undefined {
    const start = stdout.indexOf("{");
    if (start < 0) {
        return undefined;
    }
    try {
        return JSON.parse(stdout.slice(start)) as PreviewJson;
    } catch {
        return undefined;
    }
}

/** Lines of the CLI's stderr worth showing when it failed before printing a report. */
function reasonOf(stderr: string): string[] {
    const lines = stderr
        .split("\n")
        .map((l) => l.trimEnd())
        .filter((l) => l.trim() !== "");
    const errors = lines.filter((l) => /error/i.test(l));
    return (errors.length > 0 ? errors : lines).slice(-10);
}

/** Runs the check; returns the exit code and prints the report to `write`. */
export async function drift(options: DriftOptions, write: (text: string) => void): Promise<number> {
    const bin = findPulumi(options.cwd);
    if (bin === undefined) {
        write("error: pulumi not found on PATH nor in the project's .tools/bin\n");
        return EXIT_CODES.error;
    }
    const args = [
        "preview",
        "--refresh",
        "--expect-no-changes",
        "--json",
        "--non-interactive",
        ...(options.stack === undefined ? [] : ["--stack", options.stack]),
    ];
    let ran: Ran;
    try {
        ran = await runPulumi(bin, args, options.cwd);
    } catch (err) {
        write(`error: running ${bin}: ${(err as Error).message}\n`);
        return EXIT_CODES.error;
    }
    const json = extractJson(ran.stdout);
    if (json === undefined) {
        const reason = reasonOf(ran.stderr);
        write(
            [
                `error: pulumi preview exited with ${ran.code} without a report; this is not drift`,
                ...reason.map((l) => `  ${l}`),
                "",
            ].join("\n"),
        );
        return EXIT_CODES.error;
    }
    const report = summarizePreview(json);
    // The CLI failing for another reason than the changes it found is an error too.
    if (report.status === "clean" && ran.code !== 0) {
        report.status = "error";
        report.errors.push(...reasonOf(ran.stderr));
    }
    write(formatReport(report, options.stack));
    return EXIT_CODES[report.status];
}

if (require.main === module) {
    let options: DriftOptions;
    if (wantsHelp(process.argv.slice(2))) {
        process.stdout.write(HELP);
        process.exit(0);
    }
    try {
        options = parseDriftArgs(process.argv.slice(2), process.cwd());
    } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        process.exit(EXIT_CODES.error);
    }
    drift(options, (t) => process.stdout.write(t)).then(
        (code) => {
            process.exitCode = code;
        },
        (err: unknown) => {
            process.stderr.write(`error: ${(err as Error).stack ?? err}\n`);
            process.exitCode = EXIT_CODES.error;
        },
    );
}
