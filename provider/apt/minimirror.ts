/**
 * Readers for OpenStack-Helm mini-mirror source definitions, turned into AptMirror inputs:
 *
 * - the `sources/` tree: `<prefix>/<name>/source.txt` holding
 *   `source_url source_key_url dist components...` and `<prefix>/<name>/packages.txt` holding one
 *   package query a line (`package3 (>=3.6)`);
 * - the YAML form: `name`, `url`, `key_url`, `components`, `subrepos[].distribution`,
 *   `subrepos[].packages[]` of `{name, version?}`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { AirgapError, invalidArgument } from "../errors";

export interface MiniMirrorSource {
    /** The directory the mirror is served from (`source-prefix`). */
    prefix: string;
    /** The source's name, for record-keeping (and the resource name). */
    name: string;
    url: string;
    keyUrl?: string;
    distribution: string;
    components: string[];
    /** Package queries, OR'ed. */
    packages: string[];
}

function parseError(file: string, line: number, problem: string): AirgapError {
    return new AirgapError("ERR_PARSE", `${file}:${line}: ${problem}`, { argument: file });
}

/** Non-empty lines without `#` comments, with their 1-based numbers. */
function lines(text: string): [number, string][] {
    return text
        .split(/\r?\n/)
        .map((l, i): [number, string] => [i + 1, l.replace(/#.*$/, "").trim()])
        .filter(([, l]) => l !== "");
}

/** Parses one `source.txt`: `source_url source_key_url dist components...`. */
export function parseSourceTxt(
    text: string,
    file = "source.txt",
): Omit<MiniMirrorSource, "prefix" | "name" | "packages"> {
    const content = lines(text);
    if (content.length !== 1) {
        throw parseError(
            file,
            content[1]?.[0] ?? 1,
            `expected one line "source_url source_key_url dist components", found ${content.length}`,
        );
    }
    const [lineNo, line] = content[0];
    const [url, keyUrl, distribution, ...components] = line.split(/\s+/);
    if (!distribution || components.length === 0) {
        throw parseError(file, lineNo, `expected "source_url source_key_url dist components", got "${line}"`);
    }
    for (const [what, value] of [
        ["source_url", url],
        ["source_key_url", keyUrl],
    ]) {
        if (!/^[a-z][a-z0-9+.-]*:\/\/\S+$/.test(value)) {
            throw parseError(file, lineNo, `${what} "${value}" is not a URL`);
        }
    }
    return { url, keyUrl, distribution, components };
}

/** Parses `packages.txt`: one query a line; blank lines and `#` comments are skipped. */
export function parsePackagesTxt(text: string): string[] {
    return lines(text).map(([, l]) => l);
}

/** Reads a mini-mirror `sources/` tree. Sorted by prefix, then name. */
export function loadMiniMirrorSources(dir: string): MiniMirrorSource[] {
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
        throw invalidArgument("dir", `"${dir}" is not a directory`);
    }
    const sources: MiniMirrorSource[] = [];
    const subdirs = (d: string) =>
        fs
            .readdirSync(d, { withFileTypes: true })
            .filter((e) => e.isDirectory() && !e.name.startsWith("."))
            .map((e) => e.name)
            .sort();
    for (const prefix of subdirs(dir)) {
        for (const name of subdirs(path.join(dir, prefix))) {
            const at = path.join(dir, prefix, name);
            const sourceFile = path.join(at, "source.txt");
            const packagesFile = path.join(at, "packages.txt");
            for (const f of [sourceFile, packagesFile]) {
                if (!fs.existsSync(f)) {
                    throw new AirgapError(
                        "ERR_PARSE",
                        `${f} is missing: each source needs source.txt and packages.txt`,
                        {
                            argument: f,
                        },
                    );
                }
            }
            const packages = parsePackagesTxt(fs.readFileSync(packagesFile, "utf8"));
            if (packages.length === 0) {
                throw new AirgapError("ERR_PARSE", `${packagesFile} lists no packages`, { argument: packagesFile });
            }
            sources.push({
                prefix,
                name,
                ...parseSourceTxt(fs.readFileSync(sourceFile, "utf8"), sourceFile),
                packages,
            });
        }
    }
    if (sources.length === 0) {
        throw invalidArgument("dir", `"${dir}" holds no <prefix>/<name>/source.txt`);
    }
    return sources;
}

interface YamlPackage {
    name?: unknown;
    version?: unknown;
}

/**
 * Reads the mini-mirror YAML form. One source per subrepo (distribution); the prefix is the
 * top-level `name`, the source name `<name>-<distribution>`.
 */
export function parseMiniMirrorYaml(text: string, file = "mini-mirror.yaml"): MiniMirrorSource[] {
    let doc: unknown;
    try {
        doc = parseYaml(text);
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${file}: not YAML: ${(cause as Error).message}`, { argument: file, cause });
    }
    const entries = Array.isArray(doc) ? doc : [doc];
    const sources: MiniMirrorSource[] = [];
    entries.forEach((entry, i) => {
        const e = (entry ?? {}) as Record<string, unknown>;
        const where = `${file}: entry ${i + 1}`;
        for (const field of ["name", "url"]) {
            if (typeof e[field] !== "string" || e[field] === "") {
                throw new AirgapError("ERR_PARSE", `${where}: "${field}" must be a non-empty string`, {
                    argument: field,
                });
            }
        }
        const components = Array.isArray(e.components)
            ? e.components.map(String)
            : typeof e.components === "string"
              ? e.components.split(/[\s,]+/)
              : ["main"];
        if (!Array.isArray(e.subrepos) || e.subrepos.length === 0) {
            throw new AirgapError("ERR_PARSE", `${where}: "subrepos" must list at least one {distribution, packages}`, {
                argument: "subrepos",
            });
        }
        e.subrepos.forEach((sub: Record<string, unknown>, j: number) => {
            if (typeof sub?.distribution !== "string" || sub.distribution === "") {
                throw new AirgapError("ERR_PARSE", `${where}: subrepos[${j}].distribution must be a non-empty string`, {
                    argument: `subrepos[${j}].distribution`,
                });
            }
            const packages = (Array.isArray(sub.packages) ? sub.packages : []).map(
                (p: YamlPackage | string, k: number) => {
                    const name = typeof p === "string" ? p : p?.name;
                    if (typeof name !== "string" || name === "") {
                        throw new AirgapError(
                            "ERR_PARSE",
                            `${where}: subrepos[${j}].packages[${k}].name must be a non-empty string`,
                            {
                                argument: `subrepos[${j}].packages[${k}].name`,
                            },
                        );
                    }
                    const version = typeof p === "string" ? undefined : p.version;
                    return version === undefined || version === null || version === ""
                        ? name
                        : `${name} (= ${String(version)})`;
                },
            );
            if (packages.length === 0) {
                throw new AirgapError("ERR_PARSE", `${where}: subrepos[${j}].packages is empty`, {
                    argument: `subrepos[${j}].packages`,
                });
            }
            sources.push({
                prefix: String(e.name),
                name: `${String(e.name)}-${sub.distribution}`,
                url: String(e.url),
                keyUrl: typeof e.key_url === "string" ? e.key_url : undefined,
                distribution: sub.distribution,
                components,
                packages,
            });
        });
    });
    return sources;
}
