/**
 * Readers for the image lists sites already have, turned into ImageMirror `images`:
 *
 * - a plain list: one reference a line, `#` starts a comment;
 * - MicroShift's `release-<arch>.json` (package microshift-release-info): the values of `.images`;
 * - an oc-mirror `ImageSetConfiguration`: `mirror.additionalImages[].name`. The other sections
 *   (platform releases, operator catalogs, helm charts, blocked images) are refused when they are
 *   present and not empty, so nothing a site asked for is silently left out.
 *
 * Every reference is checked; errors name the file and the line or field.
 */
import * as fs from "node:fs";
import { parse as parseYaml } from "yaml";
import { AirgapError } from "../errors";
import { parseDockerReference } from "./reference";

function parseError(file: string, where: string, problem: string): AirgapError {
    return new AirgapError("ERR_PARSE", `${file}: ${where}: ${problem}`, { argument: file });
}

function checkReference(file: string, where: string, value: unknown): string {
    if (typeof value !== "string" || value.trim() === "") {
        throw parseError(file, where, `expected an image reference, got ${JSON.stringify(value)}`);
    }
    const s = value.trim();
    try {
        parseDockerReference(s.startsWith("docker://") ? s.slice("docker://".length) : s);
    } catch (err) {
        throw parseError(file, where, (err as Error).message);
    }
    return s;
}

function unique(refs: string[]): string[] {
    return [...new Set(refs)];
}

function readText(file: string): string {
    try {
        return fs.readFileSync(file, "utf8");
    } catch (cause) {
        throw new AirgapError("ERR_IO", `reading ${file}`, { cause, argument: file });
    }
}

/** Parses a plain list: one reference a line, blank lines and `#` comments ignored. */
export function parseImageList(text: string, file = "image list"): string[] {
    const refs: string[] = [];
    text.split(/\r?\n/).forEach((raw, i) => {
        const line = raw.replace(/#.*$/, "").trim();
        if (line === "") {
            return;
        }
        if (/\s/.test(line)) {
            throw parseError(file, `line ${i + 1}`, `expected one image reference, got "${line}"`);
        }
        refs.push(checkReference(file, `line ${i + 1}`, line));
    });
    if (refs.length === 0) {
        throw parseError(file, "line 1", "the list holds no image reference");
    }
    return unique(refs);
}

export function loadImageList(file: string): string[] {
    return parseImageList(readText(file), file);
}

/** Parses MicroShift's `release-<arch>.json`: the values of `.images`, in file order. */
export function parseMicroShiftRelease(text: string, file = "release.json"): string[] {
    let doc: unknown;
    try {
        doc = JSON.parse(text);
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${file}: not valid JSON`, { cause, argument: file });
    }
    const images = (doc as { images?: unknown } | null)?.images;
    if (typeof images !== "object" || images === null || Array.isArray(images)) {
        throw parseError(file, "images", "expected an object of component name to image reference");
    }
    const refs = Object.entries(images).map(([name, ref]) => checkReference(file, `images.${name}`, ref));
    if (refs.length === 0) {
        throw parseError(file, "images", "is empty");
    }
    return unique(refs);
}

export function loadMicroShiftRelease(file: string): string[] {
    return parseMicroShiftRelease(readText(file), file);
}

const UNSUPPORTED_SECTIONS = ["platform", "operators", "helm", "blockedImages"] as const;

function isEmpty(value: unknown): boolean {
    if (value === undefined || value === null) {
        return true;
    }
    if (Array.isArray(value)) {
        return value.length === 0;
    }
    if (typeof value === "object") {
        return Object.values(value as Record<string, unknown>).every(isEmpty);
    }
    return false;
}

/** Parses an oc-mirror `ImageSetConfiguration`: the names of `mirror.additionalImages`. */
export function parseImageSetConfiguration(text: string, file = "imageset-config.yaml"): string[] {
    let doc: unknown;
    try {
        doc = parseYaml(text);
    } catch (cause) {
        throw new AirgapError("ERR_PARSE", `${file}: not valid YAML: ${(cause as Error).message}`, {
            cause,
            argument: file,
        });
    }
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
        throw parseError(file, "kind", "expected an ImageSetConfiguration document");
    }
    const kind = (doc as { kind?: unknown }).kind;
    if (kind !== "ImageSetConfiguration") {
        throw parseError(file, "kind", `expected "ImageSetConfiguration", got ${JSON.stringify(kind)}`);
    }
    const mirror = (doc as { mirror?: unknown }).mirror;
    if (typeof mirror !== "object" || mirror === null || Array.isArray(mirror)) {
        throw parseError(file, "mirror", "expected an object with additionalImages");
    }
    const sections = mirror as Record<string, unknown>;
    for (const section of UNSUPPORTED_SECTIONS) {
        if (!isEmpty(sections[section])) {
            throw new AirgapError(
                "ERR_INVALID_ARGUMENT",
                `${file}: not supported yet: mirror.${section}; list the images it stands for under mirror.additionalImages`,
                { argument: file },
            );
        }
    }
    const additional = sections["additionalImages"];
    if (!Array.isArray(additional) || additional.length === 0) {
        throw parseError(file, "mirror.additionalImages", "expected a non-empty list of { name: <image reference> }");
    }
    return unique(
        additional.map((entry, i) => {
            const where = `mirror.additionalImages[${i}].name`;
            if (typeof entry !== "object" || entry === null) {
                throw parseError(file, where, `expected { name: <image reference> }, got ${JSON.stringify(entry)}`);
            }
            return checkReference(file, where, (entry as { name?: unknown }).name);
        }),
    );
}

export function loadImageSetConfiguration(file: string): string[] {
    return parseImageSetConfiguration(readText(file), file);
}
