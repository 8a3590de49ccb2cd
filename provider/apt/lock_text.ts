/**
 * The lock as it travels between the program, the engine and the provider: one line per
 * package, `name/arch version`, sorted by name. A string of 20,000 lines costs the engine and
 * the gRPC layer a fraction of what a map of 20,000 properties does (every preview passes the
 * lock several times), and the CLI shows a change to it as a line diff: each package added,
 * removed or changing version.
 *
 * The provider's state keeps only the SHA-256 of the text (`packagesSha256`): the previous
 * lock is still in the state, as the resource's inputs, which is what preview compares.
 *
 * Loaded by the program too: no other module of the provider.
 */
import { createHash } from "node:crypto";

/** `name/arch` → version (several versions separated by a space). */
export type LockMap = Record<string, string>;

/** The text of a lock: `name/arch version` lines in key order, each ending in a newline. */
export function lockText(lock: LockMap): string {
    const keys = Object.keys(lock).sort(byCodePoint);
    let text = "";
    for (const key of keys) {
        text += `${key} ${lock[key]}\n`;
    }
    return text;
}

function byCodePoint(a: string, b: string): number {
    return a < b ? -1 : a > b ? 1 : 0;
}

const KEY = /^[^\s/]+\/[^\s/]+$/;

/**
 * Parses a lock's text (or takes a map, as states and programs of older versions hold it).
 * Throws a message naming the line that does not parse; the caller names the argument.
 */
export function parseLock(value: unknown): LockMap {
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        const map = value as Record<string, unknown>;
        for (const [key, version] of Object.entries(map)) {
            if (typeof version !== "string") {
                throw new Error(`${JSON.stringify(key)} must map to a version string`);
            }
        }
        return map as LockMap;
    }
    if (typeof value !== "string") {
        throw new Error("must be the lock: lines of `name/arch version`");
    }
    const lock: LockMap = {};
    let lineNo = 0;
    for (const line of value.split("\n")) {
        lineNo++;
        if (line === "") {
            continue;
        }
        const space = line.indexOf(" ");
        const key = space < 0 ? line : line.slice(0, space);
        const version = space < 0 ? "" : line.slice(space + 1).trim();
        if (!KEY.test(key) || version === "") {
            throw new Error(`line ${lineNo} ${JSON.stringify(line)} is not \`name/arch version\``);
        }
        if (key in lock) {
            throw new Error(`line ${lineNo}: ${key} is listed twice`);
        }
        lock[key] = version;
    }
    return lock;
}

/** SHA-256 (hex) of a lock's text: the same for the text and the map it parses to. */
export function lockDigest(value: unknown): string {
    return createHash("sha256")
        .update(lockText(parseLock(value)))
        .digest("hex");
}
