/**
 * What the components share: a bad input becomes one error, raised while the program runs (the
 * first preview too) and before any child is declared, that names the component, the file and
 * line or the argument; nothing is registered, so nothing changes.
 */
import { LineCounter, parseDocument } from "yaml";
import { ProgramInputError } from "../lock";

/** Throws a ProgramInputError `Type "name": <message>` carrying the cause's code and argument. */
export function failInput(type: string, name: string, err: unknown, argument?: string): never {
    const message = err instanceof Error ? err.message : String(err);
    const from = err as { code?: unknown; argument?: unknown } | undefined;
    throw new ProgramInputError(`${type} "${name}": ${message}`, {
        code: typeof from?.code === "string" ? from.code : "ERR_INVALID_ARGUMENT",
        argument: argument ?? (typeof from?.argument === "string" ? from.argument : undefined),
    });
}

/** Runs `read`; an error it throws becomes the component's input error. */
export function readInput<T>(type: string, name: string, read: () => T): T {
    try {
        return read();
    } catch (err) {
        return failInput(type, name, err);
    }
}

/**
 * The 1-based line of the YAML node at `path` (indexes and keys, e.g. `[0, "subrepos", 1]`) in
 * `text`, or of the deepest node of the path that exists; undefined when the text is not YAML.
 */
export function yamlLine(text: string, path: readonly (string | number)[]): number | undefined {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter });
    if (doc.errors.length > 0) {
        return undefined;
    }
    let found: { range?: [number, number, number] | null } | undefined = doc.contents ?? undefined;
    for (let depth = path.length; depth >= 0; depth--) {
        const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
        if (node !== undefined && node !== null && typeof node === "object" && "range" in node) {
            found = node as { range?: [number, number, number] | null };
            break;
        }
    }
    const offset = found?.range?.[0];
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
}
