/**
 * Relationship fields (`Depends`, `Pre-Depends`, `Recommends`, `Suggests`, `Provides`,
 * `Breaks`, `Conflicts`, ...), Debian policy §7.1:
 *
 *     field      := [group] *("," [group])         empty groups (a trailing ",") are skipped
 *     group      := relation *("|" relation)
 *     relation   := name [":" qualifier] ["(" op version ")"] ["[" arch *arch "]"] *profiles
 *     op         := "<<" | "<=" | "=" | ">=" | ">>" | "<" | ">"     ("<" is "<=", ">" is ">=")
 *     arch       := ["!"] archname
 *     profiles   := "<" ["!"] profile *(["!"] profile) ">"
 *
 * White space (spaces, tabs, newlines of a folded field) may appear between any two tokens.
 * Build profiles are checked for syntax and dropped: binary package indexes never carry them
 * and the resolver does not build. Architecture restrictions are kept as written.
 */

import { AirgapError } from "../errors";
import type { Relation, RelationList } from "./types";
import { parseVersion } from "./version";

type Op = NonNullable<Relation["op"]>;

const OPS: Readonly<Record<string, Op>> = {
    "<<": "<<",
    "<=": "<=",
    "=": "=",
    ">=": ">=",
    ">>": ">>",
    "<": "<=",
    ">": ">=",
};

function isSpace(c: number): boolean {
    return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isAlnum(c: number): boolean {
    return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Characters of a package name after the first (dpkg also accepts `_`, deprecated). */
function isNameChar(c: number): boolean {
    return isAlnum(c) || c === 0x2b || c === 0x2d || c === 0x2e || c === 0x5f;
}

/** Characters of an architecture, architecture qualifier or build profile name. */
function isWordChar(c: number): boolean {
    return isAlnum(c) || c === 0x2d || c === 0x2e || c === 0x2b || c === 0x5f;
}

class RelationParser {
    private pos = 0;

    constructor(private readonly text: string) {}

    parse(): RelationList {
        const groups: Relation[][] = [];
        this.skipSpace();
        while (this.pos < this.text.length) {
            if (this.peek() === 0x2c) {
                // An empty group, as in "a, , b" or a trailing ",": nothing to depend on.
                this.pos++;
                this.skipSpace();
                continue;
            }
            const group: Relation[] = [this.relation()];
            while (this.peek() === 0x7c) {
                this.pos++;
                this.skipSpace();
                group.push(this.relation());
            }
            groups.push(group);
            if (this.pos < this.text.length) {
                if (this.peek() !== 0x2c) {
                    throw this.error('expected "," or "|"');
                }
                this.pos++;
                this.skipSpace();
            }
        }
        return groups;
    }

    private relation(): Relation {
        const name = this.word(isNameChar, "a package name", true);
        let archQualifier: string | undefined;
        let op: Op | undefined;
        let version: string | undefined;
        let architectures: string[] | undefined;
        if (this.peek() === 0x3a) {
            this.pos++;
            archQualifier = this.word(isWordChar, "an architecture qualifier after ':'", false);
        }
        this.skipSpace();
        if (this.peek() === 0x28) {
            this.pos++;
            this.skipSpace();
            const opStart = this.pos;
            while (this.peek() === 0x3c || this.peek() === 0x3d || this.peek() === 0x3e) {
                this.pos++;
            }
            const opText = this.text.slice(opStart, this.pos);
            op = Object.hasOwn(OPS, opText) ? OPS[opText] : undefined;
            if (op === undefined) {
                this.pos = opStart;
                throw this.error("expected a relation operator (<<, <=, =, >=, >>)");
            }
            this.skipSpace();
            const versionStart = this.pos;
            while (this.pos < this.text.length && !isSpace(this.peek()) && this.peek() !== 0x29) {
                this.pos++;
            }
            version = this.text.slice(versionStart, this.pos);
            if (version === "") {
                throw this.error("expected a version");
            }
            try {
                parseVersion(version);
            } catch (cause) {
                this.pos = versionStart;
                throw this.error((cause as Error).message, cause);
            }
            this.skipSpace();
            if (this.peek() !== 0x29) {
                throw this.error('expected ")" after the version');
            }
            this.pos++;
            this.skipSpace();
        }
        if (this.peek() === 0x5b) {
            this.pos++;
            this.skipSpace();
            architectures = this.restrictionList(0x5d, "an architecture");
        }
        while (this.peek() === 0x3c) {
            this.pos++;
            this.skipSpace();
            this.restrictionList(0x3e, "a build profile");
        }
        const relation: { -readonly [K in keyof Relation]: Relation[K] } = { name };
        if (archQualifier !== undefined) {
            relation.archQualifier = archQualifier;
        }
        if (op !== undefined) {
            relation.op = op;
            relation.version = version;
        }
        if (architectures !== undefined) {
            relation.architectures = architectures;
        }
        return relation;
    }

    /** `[!]word ...` up to the closing character, which is consumed. */
    private restrictionList(close: number, what: string): string[] {
        const items: string[] = [];
        while (this.peek() !== close) {
            if (this.pos >= this.text.length) {
                throw this.error(`expected "${String.fromCharCode(close)}"`);
            }
            const negated = this.peek() === 0x21;
            if (negated) {
                this.pos++;
            }
            const word = this.word(isWordChar, what, false);
            items.push(negated ? `!${word}` : word);
            this.skipSpace();
        }
        if (items.length === 0) {
            throw this.error(`expected ${what}`);
        }
        this.pos++;
        this.skipSpace();
        return items;
    }

    /** Reads a word; `alnumStart` demands an alphanumeric first character (package names). */
    private word(isChar: (c: number) => boolean, what: string, alnumStart: boolean): string {
        const start = this.pos;
        if (this.pos >= this.text.length || !(alnumStart ? isAlnum(this.peek()) : isChar(this.peek()))) {
            throw this.error(`expected ${what}`);
        }
        while (this.pos < this.text.length && isChar(this.peek())) {
            this.pos++;
        }
        const word = this.text.slice(start, this.pos);
        this.skipSpace();
        return word;
    }

    private peek(): number {
        return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
    }

    private skipSpace(): void {
        while (this.pos < this.text.length && isSpace(this.text.charCodeAt(this.pos))) {
            this.pos++;
        }
    }

    private error(problem: string, cause?: unknown): AirgapError {
        const at =
            this.pos >= this.text.length ? "end of field" : JSON.stringify(this.text.slice(this.pos, this.pos + 40));
        const field = this.text.length > 200 ? `${this.text.slice(0, 200)}...` : this.text;
        return new AirgapError(
            "ERR_PARSE",
            `invalid relation field ${JSON.stringify(field)}: ${problem} at ${at}`,
            cause === undefined ? {} : { cause },
        );
    }
}

/**
 * Parses a relationship field into groups of alternatives. An empty or blank field gives an
 * empty list. Throws an `ERR_PARSE` AirgapError quoting the field and the offending text.
 */
export function parseRelations(field: string): RelationList {
    return new RelationParser(field).parse();
}

/** Writes one relation in canonical form, e.g. `libc6:any (>= 2.34) [amd64 !arm64]`. */
export function formatRelation(relation: Relation): string {
    let out = relation.name;
    if (relation.archQualifier !== undefined) {
        out += `:${relation.archQualifier}`;
    }
    if (relation.op !== undefined) {
        out += ` (${relation.op} ${relation.version ?? ""})`;
    }
    if (relation.architectures !== undefined && relation.architectures.length > 0) {
        out += ` [${relation.architectures.join(" ")}]`;
    }
    return out;
}

/** Writes a whole field: alternatives joined by " | ", groups by ", ". */
export function formatRelations(relations: RelationList): string {
    return relations.map((group) => group.map(formatRelation).join(" | ")).join(", ");
}
