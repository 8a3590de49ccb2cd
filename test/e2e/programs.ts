/** Programs of a deployment repository, as the end-to-end suites run them from directories. */

/**
 * A deployment-repository program: the arguments come from stack config, the signing key from a
 * config secret (left out: no signing).
 */
export const aptProgram = `import * as pulumi from "@pulumi/pulumi";
import { AptMirror, type AptMirrorArgs } from "pulumi-airgap";

const config = new pulumi.Config();
const args = config.requireObject<AptMirrorArgs>("args");
const key = config.getSecret("signingKey");
const mirror = new AptMirror("debian", { ...args, signing: key === undefined ? undefined : { privateKey: key } });
export const packages = mirror.packages;
export const publicKey = mirror.publicKey;
export const count = mirror.packageCount;
export const drift = mirror.drift;
`;

/**
 * An AptMirror whose outputs feed a HostMirrorConfig (APT source with its key), every output
 * exported: the shape of a site's program, and of the default stack.
 */
export const aptAndHostProgram = `import * as pulumi from "@pulumi/pulumi";
import { AptMirror, type AptMirrorArgs, HostMirrorConfig } from "pulumi-airgap";

const config = new pulumi.Config();
const mirror = new AptMirror("debian", {
    ...config.requireObject<AptMirrorArgs>("args"),
    signing: { privateKey: config.requireSecret("signingKey") },
});
const host = new HostMirrorConfig("site", {
    target: { local: { root: config.require("hostRoot") } },
    apt: [
        {
            name: "site-debian",
            uris: [pulumi.interpolate\`file://\${mirror.publishedPath}\`],
            suites: ["bookworm"],
            components: ["main"],
            signedBy: mirror.publicKey,
        },
    ],
});
export const packages = mirror.packages;
export const publishedPath = mirror.publishedPath;
export const hostFiles = host.files;
`;
