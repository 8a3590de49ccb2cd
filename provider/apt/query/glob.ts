/**
 * Glob patterns for the `%` operator: `*` matches any run of characters, `?` one character,
 * `[abc]`, `[a-z]` and `[!a-z]` (or `[^a-z]`) one character of (or outside) a set, and `\` takes the
 * next character literally. The pattern must match the whole value.
 *
 * NOTE: aptly matches with Go's `filepath.Match`, where `*` and `?` never match "/". Package names
 * and versions cannot hold "/", so the difference only shows on fields such as `Section` or
 * `Filename`; there a `*` that also spans "/" is what a user writing `Section (% *net)` expects.
 */

/** The equivalent anchored regular expression, or undefined when a "[" set is never closed. */
export function globToRegExp(pattern: string): RegExp | undefined {
    let source = "";
    for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (c === "*") {
            source += "[^]*";
        } else if (c === "?") {
            source += "[^]";
        } else if (c === "\\") {
            i++;
            source += escapeChar(i < pattern.length ? pattern[i]! : "\\");
        } else if (c === "[") {
            let j = i + 1;
            let negate = false;
            if (pattern[j] === "!" || pattern[j] === "^") {
                negate = true;
                j++;
            }
            let set = "";
            let first = true;
            while (j < pattern.length && (pattern[j] !== "]" || first)) {
                const m = pattern[j]!;
                if (m === "\\" && j + 1 < pattern.length) {
                    j++;
                    set += escapeInSet(pattern[j]!);
                } else if (m === "-" && !first && j + 1 < pattern.length && pattern[j + 1] !== "]") {
                    set += "-";
                } else {
                    set += escapeInSet(m);
                }
                first = false;
                j++;
            }
            if (j >= pattern.length) {
                return undefined;
            }
            source += `[${negate ? "^" : ""}${set}]`;
            i = j;
        } else {
            source += escapeChar(c);
        }
    }
    try {
        return new RegExp(`^${source}$`, "u");
    } catch {
        // A reversed range such as [z-a].
        return undefined;
    }
}

function escapeChar(c: string): string {
    return /[\\^$.*+?()[\]{}|/]/u.test(c) ? `\\${c}` : c;
}

function escapeInSet(c: string): string {
    return /[\\\]^[-]/u.test(c) ? `\\${c}` : c;
}
