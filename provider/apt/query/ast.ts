/**
 * The tree a package query parses into. Every node implements `QueryNode`; code that walks a tree
 * (the matcher, the index planner) does so through `QueryVisitor`, so adding a node kind is a
 * compile error everywhere it must be handled.
 *
 * Nodes are plain immutable values: two trees parsed from equivalent text are deep-equal, and
 * `toString()` renders a canonical query that parses back into an equal tree.
 */

/** Version relations in dpkg spelling, plus `%` (glob) and `~` (regular expression). */
export type Operator = "=" | "<<" | "<=" | ">>" | ">=" | "%" | "~";

/** Relations that compare versions (or strings) by order. */
export type OrderOperator = "<<" | "<=" | "=" | ">=" | ">>";

export type QueryNodeKind = "or" | "and" | "not" | "dependency" | "key" | "field";

export interface QueryNode {
    readonly kind: QueryNodeKind;
    accept<T>(visitor: QueryVisitor<T>): T;
    /** Canonical query text; parsing it MUST give a tree deep-equal to this one. */
    toString(): string;
}

export interface QueryVisitor<T> {
    or(node: OrNode): T;
    and(node: AndNode): T;
    not(node: NotNode): T;
    dependency(node: DependencyNode): T;
    key(node: PackageKeyNode): T;
    field(node: FieldNode): T;
}

/** `(op value)` after a name or field. A condition written without an operator means `=`. */
export interface Condition {
    readonly op: Operator;
    readonly value: string;
}

/** `a | b | ...`: matches when any operand matches. Always has two operands or more. */
export class OrNode implements QueryNode {
    public readonly kind = "or" as const;

    constructor(public readonly operands: readonly QueryNode[]) {}

    accept<T>(visitor: QueryVisitor<T>): T {
        return visitor.or(this);
    }

    toString(): string {
        return this.operands.map((o) => o.toString()).join(" | ");
    }
}

/** `a, b, ...`: matches when every operand matches. Always has two operands or more. */
export class AndNode implements QueryNode {
    public readonly kind = "and" as const;

    constructor(public readonly operands: readonly QueryNode[]) {}

    accept<T>(visitor: QueryVisitor<T>): T {
        return visitor.and(this);
    }

    toString(): string {
        return this.operands.map((o) => (o.kind === "or" ? `(${o})` : o.toString())).join(", ");
    }
}

/** `!a`. */
export class NotNode implements QueryNode {
    public readonly kind = "not" as const;

    constructor(public readonly operand: QueryNode) {}

    accept<T>(visitor: QueryVisitor<T>): T {
        return visitor.not(this);
    }

    toString(): string {
        const inner = this.operand.toString();
        return this.operand.kind === "or" || this.operand.kind === "and" ? `!(${inner})` : `!${inner}`;
    }
}

/**
 * A condition shaped like a Debian dependency: `name`, `name (>= 1.2)`, `name (% 1.*) {amd64}`.
 * Without a condition it also matches packages that provide `name`.
 */
export class DependencyNode implements QueryNode {
    public readonly kind = "dependency" as const;

    constructor(
        public readonly name: string,
        public readonly condition?: Condition,
        public readonly architecture?: string,
    ) {}

    accept<T>(visitor: QueryVisitor<T>): T {
        return visitor.dependency(this);
    }

    toString(): string {
        let text = quoteWord(this.name);
        if (this.condition !== undefined) {
            text += ` ${renderCondition(this.condition)}`;
        }
        if (this.architecture !== undefined) {
            text += ` {${quoteWord(this.architecture)}}`;
        }
        return text;
    }
}

/** `name_version_arch`: exactly one package. */
export class PackageKeyNode implements QueryNode {
    public readonly kind = "key" as const;

    constructor(
        public readonly name: string,
        public readonly version: string,
        public readonly architecture: string,
    ) {}

    accept<T>(visitor: QueryVisitor<T>): T {
        return visitor.key(this);
    }

    toString(): string {
        return quoteWord(`${this.name}_${this.version}_${this.architecture}`);
    }
}

/**
 * `Field (op value)` on a control field, or on one of the special fields `$Source`,
 * `$SourceVersion`, `$Version`, `$Architecture`, `$PackageType`. Without a condition it matches
 * packages where the field is present and not empty.
 */
export class FieldNode implements QueryNode {
    public readonly kind = "field" as const;

    constructor(
        public readonly field: string,
        public readonly condition?: Condition,
    ) {}

    accept<T>(visitor: QueryVisitor<T>): T {
        return visitor.field(this);
    }

    toString(): string {
        const name = quoteWord(this.field);
        return this.condition === undefined ? name : `${name} ${renderCondition(this.condition)}`;
    }
}

/** Fields that are not read from the stanza; any other name starting with "$" is a syntax error. */
export const SPECIAL_FIELDS: readonly string[] = [
    "$Source",
    "$SourceVersion",
    "$Version",
    "$Architecture",
    "$PackageType",
];

/** Characters that end an unquoted word, and characters that start an operator token. */
export const WORD_BREAKS = "()|,!{}";
export const OPERATOR_STARTS = "<>=%~";

function renderCondition(condition: Condition): string {
    return `(${condition.op} ${quoteWord(condition.value)})`;
}

/** Quotes a word when it would not read back as one unquoted word. */
export function quoteWord(word: string): string {
    const needsQuotes =
        word === "" ||
        OPERATOR_STARTS.includes(word[0]!) ||
        word[0] === '"' ||
        word[0] === "'" ||
        [...word].some((c) => WORD_BREAKS.includes(c) || /\s/u.test(c));
    if (!needsQuotes) {
        return word;
    }
    return `"${word.replace(/[\\"]/gu, (c) => `\\${c}`)}"`;
}
