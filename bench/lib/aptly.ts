import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeTempDir } from "../../test/harness/tmp";
import { combine, type Measurement, measureCommand } from "./measure";

/**
 * The aptly side: one mirror with a filter and its dependencies, snapshots of it, and one
 * signed publication switched from snapshot to snapshot, the way aptly is run in production
 * (`mirror update` → `snapshot create` → `publish switch`). Each call is one aptly process,
 * measured on its own; a sync is the sum of its calls.
 */

export interface AptlyOptions {
    /** Upstream root URL and suite. */
    url: string;
    distribution: string;
    /**
     * aptly filter (`-filter`), followed with `-filter-with-deps`; undefined mirrors the whole
     * suite (no filter).
     */
    filter?: string;
    /** A keyring file (binary OpenPGP keys) holding the upstream's public key, for gpgv. */
    trustedKeyring: string;
    /** GNUPGHOME holding the secret key that signs the publication. */
    signingHome: string;
    signingFingerprint: string;
    /** Publication prefix. */
    prefix: string;
}

export interface AptlySide {
    readonly rootDir: string;
    /** `<rootDir>/public/<prefix>`: the published repository. */
    readonly publishedDir: string;
    /** mirror create + update + snapshot + publish into a fresh root. */
    cold(): Promise<Measurement>;
    /** mirror update + snapshot + publish switch. */
    resync(): Promise<Measurement>;
}

export async function makeAptlySide(options: AptlyOptions): Promise<AptlySide> {
    const rootDir = await makeTempDir("bench-aptly");
    const config = join(rootDir, "aptly.conf");
    await writeFile(
        config,
        JSON.stringify(
            {
                rootDir,
                downloadConcurrency: 4,
                architectures: ["amd64"],
                dependencyFollowSuggests: false,
                dependencyFollowRecommends: false,
                dependencyFollowAllVariants: false,
                dependencyFollowSource: false,
                gpgDisableSign: false,
                gpgDisableVerify: false,
                gpgProvider: "gpg",
                downloadSourcePackages: false,
                skipContentsPublishing: true,
            },
            null,
            2,
        ),
    );
    const env = { ...process.env, GNUPGHOME: options.signingHome, LC_ALL: "C" };
    const mirror = "bench";
    let snapshots = 0;
    const aptly = async (label: string, args: readonly string[]) =>
        (
            await measureCommand(
                `aptly ${label}`,
                "aptly",
                [...args.slice(0, 2), `-config=${config}`, ...args.slice(2)],
                { env },
            )
        ).measurement;
    const keyring = `-keyring=${options.trustedKeyring}`;
    const signing = ["-batch", `-gpg-key=${options.signingFingerprint}`];
    const update = () => aptly("mirror update", ["mirror", "update", keyring, mirror]);
    const snapshot = () => {
        snapshots++;
        return aptly("snapshot create", ["snapshot", "create", `s${snapshots}`, "from", "mirror", mirror]);
    };

    return {
        rootDir,
        publishedDir: join(rootDir, "public", options.prefix),
        async cold() {
            const create = await aptly("mirror create", [
                "mirror",
                "create",
                "-architectures=amd64",
                ...(options.filter === undefined ? [] : [`-filter=${options.filter}`, "-filter-with-deps"]),
                keyring,
                mirror,
                options.url,
                options.distribution,
                "main",
            ]);
            const updated = await update();
            const snap = await snapshot();
            const publish = await aptly("publish snapshot", [
                "publish",
                "snapshot",
                ...signing,
                `-distribution=${options.distribution}`,
                "-skip-contents",
                "-skip-bz2",
                `s${snapshots}`,
                options.prefix,
            ]);
            return combine([create, updated, snap, publish]);
        },
        async resync() {
            const updated = await update();
            const snap = await snapshot();
            const publish = await aptly("publish switch", [
                "publish",
                "switch",
                ...signing,
                "-skip-contents",
                "-skip-bz2",
                options.distribution,
                options.prefix,
                `s${snapshots}`,
            ]);
            return combine([updated, snap, publish]);
        },
    };
}
