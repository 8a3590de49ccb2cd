import assert from "node:assert/strict";
import { hasCode } from "../../../../provider/errors";
import {
    AndNode,
    type Condition,
    DependencyNode,
    FieldNode,
    NotNode,
    OrNode,
    PackageKeyNode,
    type QueryNode,
} from "../../../../provider/apt/query/ast";
import { parseQuery } from "../../../../provider/apt/query/parser";
import { type QuerySyntaxError, tokenize } from "../../../../provider/apt/query/tokenizer";

const dep = (name: string, condition?: Condition, architecture?: string) =>
    new DependencyNode(name, condition, architecture);
const field = (name: string, condition?: Condition) => new FieldNode(name, condition);
const cond = (op: Condition["op"], value: string): Condition => ({ op, value });
const or = (...operands: QueryNode[]) => new OrNode(operands);
const and = (...operands: QueryNode[]) => new AndNode(operands);
const not = (operand: QueryNode) => new NotNode(operand);

const cases: [string, QueryNode][] = [
    ["nginx", dep("nginx")],
    ["  nginx  ", dep("nginx")],
    ["nginx (>= 1.22)", dep("nginx", cond(">=", "1.22"))],
    ["nginx (>=1.22)", dep("nginx", cond(">=", "1.22"))],
    ["nginx (>= 1.22) {amd64}", dep("nginx", cond(">=", "1.22"), "amd64")],
    ["nginx {arm64}", dep("nginx", undefined, "arm64")],
    ["nginx (1.22.1-9)", dep("nginx", cond("=", "1.22.1-9"))],
    ["nginx (= 1:1.22.1-9~bpo12+1)", dep("nginx", cond("=", "1:1.22.1-9~bpo12+1"))],
    ["nginx (<< 2)", dep("nginx", cond("<<", "2"))],
    ["nginx (<= 2)", dep("nginx", cond("<=", "2"))],
    ["nginx (>> 2)", dep("nginx", cond(">>", "2"))],
    // Obsolete dpkg spellings: `<` is `<=` and `>` is `>=`.
    ["nginx (< 2)", dep("nginx", cond("<=", "2"))],
    ["nginx (> 2)", dep("nginx", cond(">=", "2"))],
    ["nginx (% 1.22.*)", dep("nginx", cond("%", "1.22.*"))],
    ["nginx_1.22.1-9_amd64", new PackageKeyNode("nginx", "1.22.1-9", "amd64")],
    ["libc6_2.36-9+deb12u4_arm64", new PackageKeyNode("libc6", "2.36-9+deb12u4", "arm64")],
    ["Priority (required)", field("Priority", cond("=", "required"))],
    ["Priority", field("Priority")],
    ["$Source (nginx)", field("$Source", cond("=", "nginx"))],
    ["$Version (>= 3.5)", field("$Version", cond(">=", "3.5"))],
    ["$Architecture (amd64)", field("$Architecture", cond("=", "amd64"))],
    ["$PackageType (deb)", field("$PackageType", cond("=", "deb"))],
    ["Name (% ngin*)", field("Name", cond("%", "ngin*"))],
    ["Name (~ ^ngi.*)", field("Name", cond("~", "^ngi.*"))],
    ['Name (~ "^(nginx|apache2)$")', field("Name", cond("~", "^(nginx|apache2)$"))],
    ["Description (~ 'web server')", field("Description", cond("~", "web server"))],
    ['Maintainer ("Debian \\"Nginx\\" Team")', field("Maintainer", cond("=", 'Debian "Nginx" Team'))],
    ["Section ('it\\'s')", field("Section", cond("=", "it's"))],
    ["nginx | apache2", or(dep("nginx"), dep("apache2"))],
    ["a | b | c", or(dep("a"), dep("b"), dep("c"))],
    ["a, b, c", and(dep("a"), dep("b"), dep("c"))],
    ["!a", not(dep("a"))],
    ["!!a", not(not(dep("a")))],
    // `|` binds loosest, then `,`, then `!`.
    ["a, b | !c, d", or(and(dep("a"), dep("b")), and(not(dep("c")), dep("d")))],
    ["a | b, c", or(dep("a"), and(dep("b"), dep("c")))],
    ["(a | b), c", and(or(dep("a"), dep("b")), dep("c"))],
    ["!(a | b)", not(or(dep("a"), dep("b")))],
    ["((a))", dep("a")],
    ["(a | b) | c", or(dep("a"), dep("b"), dep("c"))],
    ["a, (b, c)", and(dep("a"), dep("b"), dep("c"))],
    [
        "Priority (required) | $Source (nginx), !nginx-doc, $Version (>= 1.22)",
        or(
            field("Priority", cond("=", "required")),
            and(field("$Source", cond("=", "nginx")), not(dep("nginx-doc")), field("$Version", cond(">=", "1.22"))),
        ),
    ],
    [
        "nginx (>= 1.22) {amd64} | nginx-light {all}",
        or(dep("nginx", cond(">=", "1.22"), "amd64"), dep("nginx-light", undefined, "all")),
    ],
    // Operator characters inside a word are part of it.
    ["Name (~ a=b~c<d)", field("Name", cond("~", "a=b~c<d"))],
    ["$Version (~ ~bpo)", field("$Version", cond("~", "~bpo"))],
    ["$Version (= =1)", field("$Version", cond("=", "=1"))],
    // A word with an underscore but no condition and a single "_" is a (non-existent) name.
    ["foo_bar", dep("foo_bar")],
    ["Foo_1.0_amd64", new PackageKeyNode("Foo", "1.0", "amd64")],
    ['"nginx"', dep("nginx")],
];

describe("apt query parser", () => {
    for (const [text, tree] of cases) {
        it(`parses ${JSON.stringify(text)}`, () => {
            assert.deepStrictEqual(parseQuery(text), tree);
        });
    }

    it("renders canonical text that parses back into the same tree", () => {
        for (const [text, tree] of cases) {
            const rendered = parseQuery(text).toString();
            assert.deepStrictEqual(parseQuery(rendered), tree, `${text} -> ${rendered}`);
        }
    });

    it("renders words that need it in quotes", () => {
        assert.equal(field("Description", cond("~", "web (server)")).toString(), 'Description (~ "web (server)")');
        assert.equal(dep("a", cond("=", 'x "y\\z')).toString(), 'a (= "x \\"y\\\\z")');
        assert.equal(dep("a", cond("=", "'x")).toString(), 'a (= "\'x")');
        assert.equal(dep("a", cond("=", ">1")).toString(), 'a (= ">1")');
        assert.equal(and(or(dep("a"), dep("b")), not(and(dep("c"), dep("d")))).toString(), "(a | b), !(c, d)");
    });

    it("records token offsets and quoting", () => {
        assert.deepStrictEqual(tokenize('a (>= "1")'), [
            { type: "word", value: "a", offset: 0 },
            { type: "(", value: "(", offset: 2 },
            { type: "operator", value: ">=", offset: 3 },
            { type: "word", value: "1", offset: 6, quoted: true },
            { type: ")", value: ")", offset: 9 },
            { type: "end", value: "", offset: 10 },
        ]);
    });

    const errors: [string, number, RegExp][] = [
        ["nginx (>= ", 10, /unexpected end of input/],
        ["", 1, /unexpected end of input at column 1 \(expected a package name, a field or "\("\)/],
        ["nginx (>= 1.22", 15, /unexpected end of input at column 15 \(expected "\)"\)/],
        ["nginx (>= 1.22))", 16, /unexpected "\)" at column 16 \(expected a "\(" to match it\)/],
        ["nginx apache2", 7, /unexpected word "apache2" at column 7 \(expected end of query/],
        ["nginx |", 8, /unexpected end of input/],
        ["| nginx", 1, /unexpected "\|"/],
        ["nginx,, apache2", 7, /unexpected ","/],
        ["(nginx | apache2", 17, /expected "\)"/],
        ["nginx (>= )", 11, /unexpected "\)" at column 11 \(expected a value\)/],
        ["nginx ()", 8, /expected an operator or a value/],
        ["nginx {amd64", 13, /expected "}"/],
        ["nginx {}", 8, /expected an architecture/],
        ['Name (~ "unterminated)', 9, /unterminated quoted string/],
        ["Name (~ 'a\\", 9, /unterminated quoted string/],
        ["Name (~ a[)", 9, /invalid regular expression/],
        ["Name (% a[b)", 9, /invalid glob pattern/],
        ["$Colour (red)", 1, /unknown special field \$Colour/],
        ["Priority (required) {amd64}", 21, /unexpected "{"/],
        ["nginx_1.0_amd64 {amd64}", 17, /unexpected "{"/],
        ["!", 2, /unexpected end of input/],
        ['"" (= 1)', 1, /empty package name/],
    ];
    for (const [text, column, problem] of errors) {
        it(`rejects ${JSON.stringify(text)} at column ${column}`, () => {
            assert.throws(
                () => parseQuery(text),
                (err: unknown) => {
                    assert.ok(hasCode(err, "ERR_PARSE"), String(err));
                    const e = err as QuerySyntaxError;
                    assert.equal(e.column, column, e.message);
                    assert.equal(e.query, text);
                    assert.match(e.message, problem);
                    assert.ok(e.message.startsWith(`query ${JSON.stringify(text)}: `), e.message);
                    assert.ok(e.message.includes(` at column ${column}`), e.message);
                    return true;
                },
            );
        });
    }

    it("reports the end of input right after the last character", () => {
        assert.throws(() => parseQuery("nginx (>= "), {
            code: "ERR_PARSE",
            message: 'query "nginx (>= ": unexpected end of input at column 10 (expected a value)',
        });
    });
});
