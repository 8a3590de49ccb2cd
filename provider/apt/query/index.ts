/** Package queries in aptly's language: parse, inspect, match. The grammar is in parser.ts. */

export {
    AndNode,
    type Condition,
    DependencyNode,
    FieldNode,
    NotNode,
    type Operator,
    OrNode,
    PackageKeyNode,
    type QueryNode,
    type QueryNodeKind,
    type QueryVisitor,
    quoteWord,
    SPECIAL_FIELDS,
} from "./ast";
export { type CompiledQuery, compileQuery, compileTree, matchesArchitecture, type PackagePredicate } from "./match";
export { parseQuery } from "./parser";
export { QuerySyntaxError, type Token, type TokenType, tokenize } from "./tokenizer";
