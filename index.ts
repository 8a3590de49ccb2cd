/**
 * The default stack of this repository (see Pulumi.yaml). Everything it writes stays under
 * .data/ (override with `pulumi config set dataDir <dir>`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { HostMirrorConfig } from "./sdk";

export = async () => {
    const config = new pulumi.Config();
    const data = path.resolve(__dirname, "..", config.get("dataDir") ?? ".data");
    const hostRoot = path.join(data, "host");
    fs.mkdirSync(hostRoot, { recursive: true });

    const host = new HostMirrorConfig("site-host", {
        target: { local: { root: hostRoot } },
        registries: [
            { source: "quay.io", mirrors: ["mirror.site.internal:5000"] },
            { source: "registry.k8s.io", mirrors: ["mirror.site.internal:5000/registry.k8s.io"] },
        ],
    });
    return { hostRoot, hostFiles: host.files };
};
