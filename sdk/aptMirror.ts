import * as pulumi from "@pulumi/pulumi";
import { forwardingProvider } from "../provider/dynamic/provider";
import { APT_DEFAULTS, type AptLock, type AptSourceSpec, resolveProgramLock } from "../provider/apt/mirror";
import { inputsDigest, pinnedLock, resolvingInput } from "./lock";

export interface AptSourceArgs {
    /** Repository root, e.g. "http://deb.debian.org/debian". */
    url: pulumi.Input<string>;
    /** Suite or codename, e.g. "bookworm". */
    distribution: pulumi.Input<string>;
    /** Defaults to ["main"] (`APT_DEFAULTS.components` of the engine). */
    components?: pulumi.Input<pulumi.Input<string>[]>;
    /** Defaults to ["amd64"] (`APT_DEFAULTS.architectures`); packages of architecture "all" are always included. */
    architectures?: pulumi.Input<pulumi.Input<string>[]>;
    /** Armored public key(s) the upstream Release is signed with. */
    key?: pulumi.Input<string>;
    /** URL of the upstream key (mini-mirror's source_key_url). */
    keyUrl?: pulumi.Input<string>;
    /** Path of a keyring file (.asc or binary .gpg), e.g. /usr/share/keyrings/debian-archive-keyring.gpg. */
    keyring?: pulumi.Input<string>;
    /** Accept an unsigned upstream. Defaults to false. */
    allowUnsigned?: pulumi.Input<boolean>;
}

export interface AptPublishArgs {
    /** Directory the mirrors are served from. Must exist. */
    root: pulumi.Input<string>;
    /** Sub-directory for this mirror (mini-mirror's source prefix), e.g. "debian". */
    prefix: pulumi.Input<string>;
    /** Defaults to the source's distribution. */
    distribution?: pulumi.Input<string>;
    origin?: pulumi.Input<string>;
    label?: pulumi.Input<string>;
}

export interface AptSigningArgs {
    /** Armored OpenPGP private key (RSA or Ed25519). Pass it as a secret. */
    privateKey: pulumi.Input<string>;
    /** Passphrase of an encrypted key. */
    passphrase?: pulumi.Input<string>;
}

export interface AptMirrorArgs {
    source: pulumi.Input<AptSourceArgs>;
    /** aptly package queries, OR'ed: "nginx", "jq (>= 1.6)", "Priority (required)", "$Source (openssl)". */
    packages: pulumi.Input<pulumi.Input<string>[]>;
    /** Add the Depends/Pre-Depends closure, like aptly's -filter-with-deps. Defaults to true (`APT_DEFAULTS.withDeps`). */
    withDeps?: pulumi.Input<boolean>;
    /** Follow Recommends too. Defaults to false. */
    followRecommends?: pulumi.Input<boolean>;
    publish: pulumi.Input<AptPublishArgs>;
    /** Signs the published Release. Required unless `allowUnsigned`. */
    signing?: pulumi.Input<AptSigningArgs>;
    /** Publish unsigned. Defaults to false. */
    allowUnsigned?: pulumi.Input<boolean>;
    /**
     * Pins the resolved packages: while the queries and source are unchanged, the lock is read
     * from this file and upstream is not contacted to resolve. Written by `pulumi up`.
     */
    lockFile?: string;
    /** Downloads at once. Defaults to 8. */
    concurrency?: pulumi.Input<number>;
}

interface Resolved {
    source: AptSourceSpec;
    queries: string[];
    withDeps: boolean;
    followRecommends: boolean;
    root: string;
}

/** Resolves the lock while the program runs (preview too), or reads it from the lock file. */
function lockFor(name: string, r: Resolved, lockFile: string | undefined): Promise<AptLock> {
    const { url, distribution, components, architectures } = r.source;
    return pinnedLock({
        name,
        file: lockFile,
        inputs: inputsDigest({
            url,
            distribution,
            components,
            architectures,
            queries: r.queries,
            withDeps: r.withDeps,
            followRecommends: r.followRecommends,
        }),
        field: "packages",
        extra: { source: { url, distribution } },
        resolve: () =>
            resolveProgramLock({
                source: r.source,
                queries: r.queries,
                withDeps: r.withDeps,
                followRecommends: r.followRecommends,
                root: r.root,
                dryRun: pulumi.runtime.isDryRun(),
            }),
    });
}

/**
 * An APT mirror: verifies the upstream Release (InRelease or Release.gpg, RSA or Ed25519), resolves
 * aptly package queries with their dependencies, downloads and checks every .deb, and publishes a
 * signed repository under `<publish.root>/<publish.prefix>`, switching atomically.
 *
 * The resolved packages (the lock, `name/arch` → version) are an input, so `pulumi preview`
 * lists each package added, removed or changing version; `pulumi refresh` re-checks the
 * published tree and reports missing or altered files.
 */
export class AptMirror extends pulumi.dynamic.Resource {
    /** The lock: `name/arch` → version, as published. */
    declare public readonly packages: pulumi.Output<Record<string, string>>;
    declare public readonly packageCount: pulumi.Output<number>;
    declare public readonly bytes: pulumi.Output<number>;
    declare public readonly releaseSha256: pulumi.Output<string>;
    declare public readonly publishedPath: pulumi.Output<string>;
    /** Armored public key for clients' Signed-By ("" when unsigned). */
    declare public readonly publicKey: pulumi.Output<string>;
    /** Problems found by the last refresh; empty when the mirror is as published. */
    declare public readonly drift: pulumi.Output<string[]>;

    constructor(name: string, args: AptMirrorArgs, opts?: pulumi.CustomResourceOptions) {
        const source = pulumi.output(args.source).apply((s) => ({
            ...s,
            components: s.components ?? [...APT_DEFAULTS.components],
            architectures: s.architectures ?? [...APT_DEFAULTS.architectures],
        }));
        const lock = pulumi
            .all([source, args.packages, args.withDeps, args.followRecommends, args.publish])
            .apply(([s, queries, withDeps, followRecommends, publish]) =>
                resolvingInput("AptMirror", name, "source", () =>
                    lockFor(
                        name,
                        {
                            source: s as AptSourceSpec,
                            queries,
                            withDeps: withDeps ?? APT_DEFAULTS.withDeps,
                            followRecommends: followRecommends ?? APT_DEFAULTS.followRecommends,
                            root: publish.root,
                        },
                        args.lockFile,
                    ),
                ),
            );
        super(
            forwardingProvider("pulumi-airgap/provider/apt/operations"),
            name,
            {
                source,
                packages: lock,
                publish: args.publish,
                // Secret even when the program passes it as plain text: never in clear in the state.
                signing: args.signing === undefined ? undefined : pulumi.secret(args.signing),
                allowUnsigned: args.allowUnsigned ?? false,
                concurrency: args.concurrency,
                packageCount: undefined,
                bytes: undefined,
                releaseSha256: undefined,
                publishedPath: undefined,
                publicKey: undefined,
                drift: undefined,
            },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "signing"] },
            "airgap",
            "AptMirror",
        );
    }
}
