/** Pieces the host file formats share. */

/** The first line of every file the renderers write whole. */
export const MANAGED_PREFIX = "# Managed by pulumi-airgap";

export const header = (what: string) =>
    `${MANAGED_PREFIX} (${what}). Local edits are reported as drift and reverted by \`pulumi up\`.\n`;

/** A TOML basic string (validated inputs hold no control characters). */
export function tomlString(value: string): string {
    return JSON.stringify(value);
}

/** `host[:port]` of a mirror location `host[:port][/namespace]`. */
export function hostOf(location: string): string {
    const slash = location.indexOf("/");
    return slash < 0 ? location : location.slice(0, slash);
}

/** The namespace of a mirror location, "" when it has none. */
export function namespaceOf(location: string): string {
    const slash = location.indexOf("/");
    return slash < 0 ? "" : location.slice(slash + 1);
}
