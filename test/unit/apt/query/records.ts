import type { PackageRecord, Stanza } from "../../../../provider/apt/types";

/**
 * Package records for tests, made from deb822 text. Only `Package`, `Version` and `Architecture`
 * are required; `Filename`, `Size` and `SHA256` get placeholder values.
 */

/** A minimal stanza: `Field: value` lines, continuation lines starting with a blank. */
export function stanza(text: string): Stanza {
    const fields = new Map<string, string>();
    const order: string[] = [];
    let current: string | undefined;
    for (const line of text.split("\n")) {
        if (line.trim() === "") {
            continue;
        }
        if (/^\s/u.test(line)) {
            if (current === undefined) {
                throw new Error(`continuation line before any field: ${line}`);
            }
            const rest = line.trim();
            fields.set(current, `${fields.get(current)}\n${rest === "." ? "" : rest}`);
            continue;
        }
        const colon = line.indexOf(":");
        if (colon <= 0) {
            throw new Error(`not a field: ${line}`);
        }
        const name = line.slice(0, colon);
        current = name.toLowerCase();
        order.push(name);
        fields.set(current, line.slice(colon + 1).trim());
    }
    return {
        get: (field) => fields.get(field.toLowerCase()),
        order,
        raw: text.trim(),
        entries: () => order.map((name): [string, string] => [name, fields.get(name.toLowerCase()) ?? ""]),
    };
}

/** Removes the indentation common to all non-blank lines, so stanzas can be indented in tests. */
function dedent(text: string): string {
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    const indent = Math.min(...lines.map((l) => /^ */u.exec(l)![0].length));
    return text
        .split("\n")
        .map((l) => l.slice(indent))
        .join("\n");
}

export function record(text: string, component = "main"): PackageRecord {
    const s = stanza(dedent(text));
    const required = (field: string): string => {
        const value = s.get(field);
        if (value === undefined) {
            throw new Error(`test record without ${field}: ${text}`);
        }
        return value;
    };
    const name = required("Package");
    const version = required("Version");
    const architecture = required("Architecture");
    const sourceField = s.get("Source");
    const sourceMatch = sourceField === undefined ? undefined : /^(\S+)(?:\s*\((.+)\))?$/u.exec(sourceField);
    return {
        name,
        version,
        architecture,
        component,
        filename: s.get("Filename") ?? `pool/${component}/${name[0]}/${name}/${name}_${version}_${architecture}.deb`,
        size: Number(s.get("Size") ?? "0"),
        sha256: s.get("SHA256") ?? "0".repeat(64),
        source: sourceMatch?.[1] ?? name,
        sourceVersion: sourceMatch?.[2] ?? version,
        stanza: s,
    };
}

/** Records from stanzas separated by blank lines. */
export function records(text: string, component = "main"): PackageRecord[] {
    return text
        .split(/\n\s*\n/u)
        .filter((block) => block.trim() !== "")
        .map((block) => record(block, component));
}
