/** The language host's command line. */

export interface HostArgs {
    engineAddress?: string;
    tracing?: string;
    runtime: string;
    showVersion: boolean;
}

/** Reads the command line the way Go's flag package does (`-f v`, `-f=v`, `--f v`, `--f=v`). */
export function parseHostArgs(argv: string[]): HostArgs {
    const out: HostArgs = { runtime: "nodejs", showVersion: false };
    const positional: string[] = [];
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--") {
            positional.push(...argv.slice(i + 1));
            break;
        }
        const m = /^--?([A-Za-z][\w-]*)(?:=(.*))?$/.exec(a);
        if (!m) {
            positional.push(a);
            continue;
        }
        const [, name, inline] = m;
        if (name === "version") {
            out.showVersion = inline === undefined || inline === "true";
            continue;
        }
        const value = inline ?? argv[++i];
        if (value === undefined) {
            throw new Error(`flag needs an argument: -${name}`);
        }
        if (name === "tracing") {
            out.tracing = value;
        } else if (name === "runtime") {
            out.runtime = value;
        } else {
            throw new Error(`flag provided but not defined: -${name}`);
        }
    }
    out.engineAddress = positional[0];
    return out;
}
