/**
 * Disabling a host's other APT sources: deb822 `.sources` stanzas get `Enabled: no`, one-line
 * `.list` entries are commented out. Comments, blank lines and stanza order stay; disabling a
 * disabled file changes nothing, so the written file renders to itself.
 *
 * Which files: `etc/apt/sources.list` and the files of `etc/apt/sources.list.d/` apt reads
 * (apt's own rule: `*.list` and `*.sources` named with letters, digits, `_`, `-` and `.`), except
 * the configuration's own and any other file pulumi-airgap wrote whole (another resource's source).
 */
import { MANAGED_PREFIX } from "./common";

export const aptSourcesList = "etc/apt/sources.list";
export const aptSourcesDir = "etc/apt/sources.list.d";

const sourcePart = /^[A-Za-z0-9_.-]+\.(list|sources)$/;

/** The source files of the host to disable, given the listing of sources.list.d (one name a line). */
export function otherAptSourceFiles(listing: string | undefined, own: readonly string[]): string[] {
    const names = (listing ?? "")
        .split("\n")
        .map((n) => n.trim())
        .filter((n) => sourcePart.test(n))
        .sort();
    return [aptSourcesList, ...names.map((n) => `${aptSourcesDir}/${n}`)].filter((p) => !own.includes(p));
}

/** Whether pulumi-airgap wrote the file whole (it is then another configuration's, not the host's). */
export function isManagedText(text: string): boolean {
    return text.startsWith(MANAGED_PREFIX);
}

/** deb822: `Enabled: no` in every stanza that has a field; an `Enabled` field already there is set to no. */
export function disableDeb822(text: string): string {
    const lines = text.replace(/\r\n/g, "\n").split("\n");
    const out: string[] = [];
    let inStanza = false;
    let hasEnabled = false;
    const close = () => {
        if (inStanza && !hasEnabled) {
            // After the stanza's last line, but before comments that trail it.
            let at = out.length;
            while (at > 0 && out[at - 1]!.startsWith("#")) {
                at--;
            }
            out.splice(at, 0, "Enabled: no");
        }
        inStanza = false;
        hasEnabled = false;
    };
    for (const line of lines) {
        if (line.trim() === "") {
            close();
            out.push(line);
        } else if (line.startsWith("#")) {
            out.push(line);
        } else if (/^[ \t]/.test(line)) {
            out.push(line); // continuation of the field before
        } else {
            inStanza = true;
            if (/^enabled\s*:/i.test(line)) {
                hasEnabled = true;
                out.push("Enabled: no");
            } else {
                out.push(line);
            }
        }
    }
    close();
    return out.join("\n");
}

/** One-line format: every entry line commented out (`# ` before it). */
export function disableOneLine(text: string): string {
    return text
        .replace(/\r\n/g, "\n")
        .split("\n")
        .map((line) => (line.trim() === "" || line.trimStart().startsWith("#") ? line : `# ${line}`))
        .join("\n");
}

export function disableAptSourceFile(path: string, text: string): string {
    return path.endsWith(".sources") ? disableDeb822(text) : disableOneLine(text);
}
