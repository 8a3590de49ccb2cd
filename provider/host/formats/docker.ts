/**
 * Docker's `etc/docker/daemon.json`: `registry-mirrors` and `insecure-registries` set in the file
 * the host has, every other key and the formatting of what is not changed kept as they were.
 *
 * These two keys belong to the configuration while it is applied: they are set to what it says
 * (and removed when it says nothing), so that rendering the written file again changes nothing.
 * Docker uses `registry-mirrors` for Docker Hub only, and takes `scheme://host[:port]` (no path).
 */
import { applyEdits, type Edit, modify, parseTree } from "jsonc-parser";
import { AirgapError } from "../../errors";
import type { RegistryMirrorSpec } from "../types";
import { hostOf } from "./common";

export const dockerDaemonJson = "etc/docker/daemon.json";

/** The `docker.io` entry's mirrors as Docker takes them, and the hosts of every insecure mirror. */
export function dockerSettings(registries: readonly RegistryMirrorSpec[]): {
    mirrors: string[];
    insecure: string[];
} {
    const mirrors: string[] = [];
    const insecure: string[] = [];
    for (const r of registries) {
        if (r.source === "docker.io") {
            for (const m of r.mirrors) {
                mirrors.push(`${r.insecure ? "http" : "https"}://${hostOf(m)}`);
            }
        }
        if (r.insecure) {
            for (const m of r.mirrors) {
                if (!insecure.includes(hostOf(m))) {
                    insecure.push(hostOf(m));
                }
            }
        }
    }
    return { mirrors, insecure };
}

/** The indentation unit (first indented line) and line ending of a file; two spaces when it has none. */
function formattingOf(text: string): { unit: string; eol: string } {
    const indent = /\n([ \t]+)\S/.exec(text)?.[1];
    return { unit: indent ?? "  ", eol: text.includes("\r\n") ? "\r\n" : "\n" };
}
/**
 * Removing a property that is followed by another: from its key to the next key, so that the
 * indentation before it stays for the next one (jsonc-parser removes from the brace for the first).
 */
function removal(text: string, key: string): Edit | undefined {
    const properties = parseTree(text)?.children ?? [];
    const at = properties.findIndex((p) => p.children?.[0]?.value === key);
    const next = properties[at + 1];
    if (at < 0 || !next) {
        return undefined;
    }
    return { offset: properties[at]!.offset, length: next.offset - properties[at]!.offset, content: "" };
}

/**
 * `current` with the two keys set. `current` undefined (no file) or blank → a new file.
 * Throws ERR_PARSE naming `filePath` when `current` is not a JSON object (dockerd would refuse it
 * too); nothing is to be written then.
 */
export function renderDaemonJson(
    current: string | undefined,
    settings: { mirrors: readonly string[]; insecure: readonly string[] },
    filePath = `/${dockerDaemonJson}`,
): string {
    const wanted: [string, readonly string[]][] = [
        ["registry-mirrors", settings.mirrors],
        ["insecure-registries", settings.insecure],
    ];
    if (current === undefined || current.trim() === "") {
        const doc = Object.fromEntries(wanted.filter(([, v]) => v.length > 0));
        return `${JSON.stringify(doc, null, 2)}\n`;
    }
    let parsed: unknown;
    try {
        // Strict JSON, as dockerd reads it: no comments, no trailing commas.
        parsed = JSON.parse(current);
    } catch (cause) {
        throw new AirgapError(
            "ERR_PARSE",
            `${filePath} is not valid JSON (${(cause as Error).message}): fix or remove it, then run again; it was left as it is`,
            { cause },
        );
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new AirgapError(
            "ERR_PARSE",
            `${filePath} holds JSON that is not an object: fix or remove it, then run again; it was left as it is`,
        );
    }
    if (Object.keys(parsed).length === 0) {
        return renderDaemonJson(undefined, settings, filePath);
    }
    // jsonc-parser formats whole lines around an edit, which would reformat the neighbouring key:
    // its raw edits are used, with the new text laid out here, one level in.
    const { unit, eol } = formattingOf(current);
    const pretty = (value: readonly string[]) => JSON.stringify(value, null, unit).replace(/\n/g, `${eol}${unit}`);
    let text = current;
    for (const [key, value] of wanted) {
        const has = Object.hasOwn(parsed, key);
        const same = has && JSON.stringify((parsed as Record<string, unknown>)[key]) === JSON.stringify(value);
        if (same || (!has && value.length === 0)) {
            continue;
        }
        const edits = modify(text, [key], value.length > 0 ? [...value] : undefined, {}).map((edit) => {
            if (value.length === 0) {
                return removal(text, key) ?? edit;
            }
            return has
                ? { ...edit, content: pretty(value) }
                : { ...edit, content: `,${eol}${unit}${JSON.stringify(key)}: ${pretty(value)}` };
        });
        text = applyEdits(text, edits);
    }
    return text;
}
