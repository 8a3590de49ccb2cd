/**
 * The machine's own APT sources, read from /etc/apt/sources.list.d (deb822 `.sources` and
 * one-line `.list` files): where a deployment repository finds its real Debian upstream without
 * naming it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseStanzas } from "./control";

export interface SystemSource {
    uri: string;
    suites: string[];
    components: string[];
    /** Keyring file named by Signed-By, when there is one. */
    signedBy?: string;
    /** The file it came from. */
    file: string;
}

function fromSourcesFile(file: string, text: string): SystemSource[] {
    const out: SystemSource[] = [];
    for (const stanza of parseStanzas(text)) {
        const types = (stanza.get("Types") ?? "").split(/\s+/);
        if (!types.includes("deb") || (stanza.get("Enabled") ?? "yes").toLowerCase() === "no") {
            continue;
        }
        const signedBy = stanza.get("Signed-By")?.trim();
        for (const uri of (stanza.get("URIs") ?? "").split(/\s+/).filter(Boolean)) {
            out.push({
                uri,
                suites: (stanza.get("Suites") ?? "").split(/\s+/).filter(Boolean),
                components: (stanza.get("Components") ?? "").split(/\s+/).filter(Boolean),
                // An embedded key block is not a file name.
                signedBy: signedBy && !signedBy.includes("\n") ? signedBy : undefined,
                file,
            });
        }
    }
    return out;
}

function fromListFile(file: string, text: string): SystemSource[] {
    const out: SystemSource[] = [];
    for (const raw of text.split("\n")) {
        const line = raw.replace(/#.*$/, "").trim();
        const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
        if (!m) {
            continue;
        }
        const signedBy = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? "")?.[1];
        out.push({ uri: m[2], suites: [m[3]], components: m[4].split(/\s+/).filter(Boolean), signedBy, file });
    }
    return out;
}

/** Every enabled `deb` source of the machine, in file-name order. */
export function systemAptSources(dir = "/etc/apt/sources.list.d"): SystemSource[] {
    if (!fs.existsSync(dir)) {
        return [];
    }
    return fs
        .readdirSync(dir)
        .sort()
        .flatMap((name) => {
            const file = path.join(dir, name);
            if (name.endsWith(".sources")) {
                return fromSourcesFile(file, fs.readFileSync(file, "utf8"));
            }
            if (name.endsWith(".list")) {
                return fromListFile(file, fs.readFileSync(file, "utf8"));
            }
            return [];
        });
}

/**
 * The machine's main Debian archive: the first source with a suite that is not -security,
 * -updates or -backports, and a component "main". Undefined when there is none.
 */
export function systemDebianArchive(dir?: string): { url: string; distribution: string; keyring?: string } | undefined {
    for (const s of systemAptSources(dir)) {
        const suite = s.suites.find((x) => !/[-/](security|updates|backports|proposed)$/.test(x) && !x.endsWith("/"));
        if (suite && s.components.includes("main") && /^https?:\/\//.test(s.uri)) {
            return { url: s.uri.replace(/\/+$/, ""), distribution: suite, keyring: s.signedBy };
        }
    }
    return undefined;
}
