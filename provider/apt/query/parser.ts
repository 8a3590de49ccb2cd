/*
 * Package queries, in the language aptly uses for mirror filters and snapshot pulls (itself modelled
 * on Debian dependency fields and reprepro's filters).
 *
 *   query       := and-query ( "|" and-query )*
 *   and-query   := not-query ( "," not-query )*
 *   not-query   := "!" not-query | primary
 *   primary     := "(" query ")" | term
 *   term        := FIELD condition?                  FIELD: a word starting with "$", or with an
 *                                                    upper-case letter and holding no "_"
 *                | NAME "_" VERSION "_" ARCH         a word with two "_" or more, no condition
 *                | NAME condition? arch?             a dependency condition
 *   condition   := "(" operator? value ")"           no operator means "="
 *   operator    := "=" | "<<" | "<=" | ">>" | ">=" | "%" | "~" | "<" | ">"
 *   arch        := "{" word "}"
 *   value       := word
 *   word        := unquoted run of characters other than white space and ( ) | , ! { }
 *                | '"' ... '"' | "'" ... "'"         backslash escapes the next character
 *
 * So "|" binds loosest, then ",", then "!": `a, b | !c, d` is `(a, b) | ((!c), d)`. A "(" right after a
 * name always opens a condition: `nginx (foo)` is nginx at version foo, never a group. `<` and `>`
 * are dpkg's obsolete spellings of `<=` and `>=`. `%` matches a shell glob (`*`, `?`, `[...]`) against
 * the whole value; `~` a regular expression anywhere in the value.
 */

import type { Condition, QueryNode } from "./ast";
import { AndNode, DependencyNode, FieldNode, NotNode, OrNode, PackageKeyNode, SPECIAL_FIELDS } from "./ast";
import { globToRegExp } from "./glob";
import { QuerySyntaxError, type Token, tokenize } from "./tokenizer";

/** Parses query text into a tree. Throws `QuerySyntaxError` (code ERR_PARSE) on bad syntax. */
export function parseQuery(text: string): QueryNode {
    return new Parser(text).parse();
}

class Parser {
    private readonly tokens: Token[];
    private index = 0;

    constructor(private readonly text: string) {
        this.tokens = tokenize(text);
    }

    parse(): QueryNode {
        const node = this.query();
        const rest = this.peek();
        if (rest.type !== "end") {
            throw this.unexpected(rest, rest.type === ")" ? 'a "(" to match it' : 'end of query, "|" or ","');
        }
        return node;
    }

    private peek(): Token {
        return this.tokens[this.index]!;
    }

    private next(): Token {
        const token = this.tokens[this.index]!;
        if (token.type !== "end") {
            this.index++;
        }
        return token;
    }

    private query(): QueryNode {
        const operands = [this.andQuery()];
        while (this.peek().type === "|") {
            this.next();
            operands.push(this.andQuery());
        }
        return operands.length === 1 ? operands[0]! : new OrNode(flatten(operands, "or"));
    }

    private andQuery(): QueryNode {
        const operands = [this.notQuery()];
        while (this.peek().type === ",") {
            this.next();
            operands.push(this.notQuery());
        }
        return operands.length === 1 ? operands[0]! : new AndNode(flatten(operands, "and"));
    }

    private notQuery(): QueryNode {
        if (this.peek().type === "!") {
            this.next();
            return new NotNode(this.notQuery());
        }
        return this.primary();
    }

    private primary(): QueryNode {
        const token = this.peek();
        if (token.type === "(") {
            this.next();
            const node = this.query();
            this.expect(")", '")"');
            return node;
        }
        if (token.type !== "word") {
            throw this.unexpected(token, 'a package name, a field or "("');
        }
        return this.term();
    }

    private term(): QueryNode {
        const word = this.next();
        const name = word.value;
        const condition = this.condition();
        if (name.startsWith("$") || (/^\p{Lu}/u.test(name) && !name.includes("_"))) {
            if (name.startsWith("$") && !SPECIAL_FIELDS.includes(name)) {
                const known = SPECIAL_FIELDS.join(", ");
                throw new QuerySyntaxError(this.text, word.offset, `unknown special field ${name} (known: ${known})`);
            }
            return new FieldNode(name, condition);
        }
        if (condition === undefined) {
            const key = splitPackageKey(name);
            if (key !== undefined) {
                return new PackageKeyNode(key.name, key.version, key.architecture);
            }
        }
        if (name === "") {
            throw new QuerySyntaxError(this.text, word.offset, "empty package name");
        }
        return new DependencyNode(name, condition, this.architecture());
    }

    private condition(): Condition | undefined {
        if (this.peek().type !== "(") {
            return undefined;
        }
        this.next();
        let op: Condition["op"] = "=";
        const opToken = this.peek();
        if (opToken.type === "operator") {
            op = this.next().value as Condition["op"];
        }
        const valueToken = this.expect("word", opToken.type === "operator" ? "a value" : "an operator or a value");
        this.expect(")", '")"');
        if (op === "~") {
            try {
                new RegExp(valueToken.value);
            } catch (err) {
                throw new QuerySyntaxError(
                    this.text,
                    valueToken.offset,
                    `invalid regular expression (${message(err)})`,
                );
            }
        } else if (op === "%" && globToRegExp(valueToken.value) === undefined) {
            throw new QuerySyntaxError(this.text, valueToken.offset, "invalid glob pattern");
        }
        return { op, value: valueToken.value };
    }

    private architecture(): string | undefined {
        if (this.peek().type !== "{") {
            return undefined;
        }
        this.next();
        const arch = this.expect("word", "an architecture");
        this.expect("}", '"}"');
        return arch.value;
    }

    private expect(type: Token["type"], what: string): Token {
        const token = this.peek();
        if (token.type !== type) {
            throw this.unexpected(token, what);
        }
        return this.next();
    }

    private unexpected(token: Token, expected: string): QuerySyntaxError {
        const found =
            token.type === "end"
                ? "end of input"
                : token.type === "word"
                  ? `word ${JSON.stringify(token.value)}`
                  : `"${token.value}"`;
        return new QuerySyntaxError(this.text, token.offset, `unexpected ${found}`, expected);
    }
}

/**
 * `name_version_arch` as aptly splits it: the name ends at the first "_", the architecture starts
 * after the last one (Debian package names and architectures never hold "_"; versions may not either,
 * but the middle is taken whole).
 */
function splitPackageKey(word: string): { name: string; version: string; architecture: string } | undefined {
    const first = word.indexOf("_");
    const last = word.lastIndexOf("_");
    if (first <= 0 || last === first || last === word.length - 1 || last === first + 1) {
        return undefined;
    }
    return { name: word.slice(0, first), version: word.slice(first + 1, last), architecture: word.slice(last + 1) };
}

/** `(a | b) | c` is `a | b | c`: splicing grouped operands keeps one tree per meaning. */
function flatten(operands: QueryNode[], kind: "or" | "and"): QueryNode[] {
    return operands.flatMap((o) => (o.kind === kind ? (o as OrNode | AndNode).operands : [o]));
}

function message(err: unknown): string {
    return err instanceof Error ? err.message : String(err);
}
