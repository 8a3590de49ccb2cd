/** pip's configuration file (pip docs, "Configuration"): `[global]` `index-url` and `trusted-host`. */
import type { PipSpec } from "../types";
import { header } from "./common";

export const pipConf = "etc/pip.conf";

export function renderPipConf(name: string, pip: PipSpec): string {
    const lines = ["[global]", `index-url = ${pip.indexUrl}`];
    if (pip.trustedHost) {
        lines.push(`trusted-host = ${pip.trustedHost}`);
    }
    return `${header(name)}${lines.join("\n")}\n`;
}
