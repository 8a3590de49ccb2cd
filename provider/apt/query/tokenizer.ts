/**
 * Splits package query text into tokens. The grammar the tokens feed is at the top of parser.ts.
 *
 * Words run until white space or one of `( ) | , ! { }`; a word may be quoted with `"` or `'`,
 * where a backslash takes the next character literally. Operator characters (`< > = % ~`) form an
 * operator only at the start of the token right after "(", so `^ngi.*`, `1:2.0~rc1` and the `~bpo`
 * of `(~ ~bpo)` are single words.
 */

import { AirgapError } from "../../errors";
import type { Operator } from "./ast";

export type TokenType = "(" | ")" | "{" | "}" | "|" | "," | "!" | "operator" | "word" | "end";

export interface Token {
    readonly type: TokenType;
    /** The operator for "operator" tokens (legacy `<` and `>` already mapped), the text for "word" tokens. */
    readonly value: string;
    /** 0-based offset of the token's first character in the query text. */
    readonly offset: number;
    /** True for a word that was written in quotes. */
    readonly quoted?: boolean;
}

/** A query syntax error. `column` is 1-based; the message quotes the query and names the column. */
export class QuerySyntaxError extends AirgapError {
    public readonly query: string;
    public readonly column: number;
    public override readonly problem: string;

    /** What was expected instead, e.g. `a value`, when that is known. */
    public readonly expected?: string;

    constructor(query: string, offset: number, problem: string, expected?: string) {
        const hint = expected === undefined ? "" : ` (expected ${expected})`;
        super("ERR_PARSE", `query ${JSON.stringify(query)}: ${problem} at column ${offset + 1}${hint}`);
        this.name = "QuerySyntaxError";
        this.query = query;
        this.column = offset + 1;
        this.problem = problem;
        this.expected = expected;
    }
}

const PUNCTUATION = new Set<string>(["(", ")", "{", "}", "|", ",", "!"]);

export function tokenize(text: string): Token[] {
    const tokens: Token[] = [];
    let i = 0;
    while (i < text.length) {
        const c = text[i]!;
        if (/\s/u.test(c)) {
            i++;
            continue;
        }
        if (PUNCTUATION.has(c)) {
            tokens.push({ type: c as TokenType, value: c, offset: i });
            i++;
            continue;
        }
        // Operators only ever follow "(", so elsewhere "~" or "=" may start a word: `(~ ~bpo)`.
        const op = tokens.at(-1)?.type === "(" ? readOperator(text, i) : undefined;
        if (op !== undefined) {
            tokens.push({ type: "operator", value: op.operator, offset: i });
            i += op.length;
            continue;
        }
        if (c === '"' || c === "'") {
            const start = i;
            let value = "";
            i++;
            for (;;) {
                if (i >= text.length) {
                    throw new QuerySyntaxError(text, start, "unterminated quoted string");
                }
                let ch = text[i]!;
                if (ch === c) {
                    i++;
                    break;
                }
                if (ch === "\\") {
                    i++;
                    if (i >= text.length) {
                        throw new QuerySyntaxError(text, start, "unterminated quoted string");
                    }
                    ch = text[i]!;
                }
                value += ch;
                i++;
            }
            tokens.push({ type: "word", value, offset: start, quoted: true });
            continue;
        }
        const start = i;
        while (i < text.length && !PUNCTUATION.has(text[i]!) && !/\s/u.test(text[i]!)) {
            i++;
        }
        tokens.push({ type: "word", value: text.slice(start, i), offset: start });
    }
    // The end sits right after the last meaningful character, so "nginx (>= " reports the end at the
    // column after ">=" rather than after invisible trailing blanks.
    tokens.push({ type: "end", value: "", offset: text.trimEnd().length });
    return tokens;
}

function readOperator(text: string, i: number): { operator: Operator; length: number } | undefined {
    const two = text.slice(i, i + 2);
    switch (two) {
        case "<<":
        case "<=":
        case ">>":
        case ">=":
            return { operator: two, length: 2 };
    }
    switch (text[i]) {
        // A lone `<` or `>` is the obsolete dpkg spelling of `<=` and `>=` (not of `<<` and `>>`):
        // deb-control(5) still documents that meaning, and aptly reads them the same way.
        case "<":
            return { operator: "<=", length: 1 };
        case ">":
            return { operator: ">=", length: 1 };
        case "=":
        case "%":
        case "~":
            return { operator: text[i] as Operator, length: 1 };
    }
    return undefined;
}
