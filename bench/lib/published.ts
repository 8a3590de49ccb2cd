import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseStanzas } from "../../provider/apt/control";

/**
 * The packages a published repository lists: `name version arch` of every entry of every
 * `dists/<dist>/<component>/binary-<arch>/Packages`, read the way a client reads them.
 */
export function publishedPackageSet(repoDir: string, distribution: string): Set<string> {
    const dist = join(repoDir, "dists", distribution);
    const out = new Set<string>();
    for (const component of readdirSync(dist, { withFileTypes: true })) {
        if (!component.isDirectory()) continue;
        for (const binary of readdirSync(join(dist, component.name))) {
            const file = join(dist, component.name, binary, "Packages");
            if (!binary.startsWith("binary-") || !existsSync(file)) continue;
            for (const stanza of parseStanzas(readFileSync(file, "utf8"))) {
                out.add(`${stanza.get("Package")} ${stanza.get("Version")} ${stanza.get("Architecture")}`);
            }
        }
    }
    return out;
}

/** Entries only in `a`, and only in `b`. */
export function difference(a: ReadonlySet<string>, b: ReadonlySet<string>): { onlyA: string[]; onlyB: string[] } {
    return {
        onlyA: [...a].filter((x) => !b.has(x)).sort(),
        onlyB: [...b].filter((x) => !a.has(x)).sort(),
    };
}
