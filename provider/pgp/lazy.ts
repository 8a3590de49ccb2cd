/**
 * openpgp, loaded on first use: it is the largest module the engines load (about 50 ms), and
 * many runs (a re-run that changes nothing, a dynamic provider that only reads) never sign or
 * verify.
 */
type OpenPgp = typeof import("openpgp");

let loaded: Promise<OpenPgp> | undefined;

export function openpgp(): Promise<OpenPgp> {
    loaded ??= import("openpgp");
    return loaded;
}
