import * as pulumi from "@pulumi/pulumi";
import { placeOf } from "../provider/store/place";
import { claimPlaces } from "./claims";
import { forwardingProvider } from "../provider/dynamic/provider";
import * as path from "node:path";
import {
    APT_DEFAULTS,
    type AptLock,
    type AptProgramLock,
    type AptSourceSpec,
    resolveProgramLock,
} from "../provider/apt/mirror";
import { writeFileAtomic } from "../provider/store/atomic";
import { inputsDigest, pinnedLock, readLockFile, resolvingInput } from "./lock";
import { lockText } from "../provider/apt/lock_text";
import {
    type AptDependenciesArgs,
    dependencyInputs,
    dependencySpecs,
    mirrorNode,
    type ResolvedMirror,
} from "./aptDependencies";
import type { AptDependencySpec, AptPublishSpec } from "../provider/apt/mirror";

export type { AptDependenciesArgs } from "./aptDependencies";

export interface AptSourceArgs {
    /** Repository root, e.g. "http://archive.example/debian". */
    url: pulumi.Input<string>;
    /** Suite or codename, e.g. "bookworm". */
    distribution: pulumi.Input<string>;
    /** Defaults to ["main"] (`APT_DEFAULTS.components` of the engine). */
    components?: pulumi.Input<pulumi.Input<string>[]>;
    /** Defaults to ["amd64"] (`APT_DEFAULTS.architectures`); packages of architecture "all" are always included. */
    architectures?: pulumi.Input<pulumi.Input<string>[]>;
    /** Armored public key(s) the upstream Release is signed with. */
    key?: pulumi.Input<string>;
    /**
     * URL of the upstream key (mini-mirror's source_key_url): https:// or file://; http:// only
     * together with `keyFingerprints`, which then pin the key fetched in clear.
     */
    keyUrl?: pulumi.Input<string>;
    /** Path of a keyring file (.asc or binary .gpg), e.g. /usr/share/keyrings/debian-archive-keyring.gpg. */
    keyring?: pulumi.Input<string>;
    /** Accept an unsigned upstream. Defaults to false. */
    allowUnsigned?: pulumi.Input<boolean>;
    /**
     * Primary-key fingerprints (40 or 64 hex digits; spaces allowed, any case), as
     * `gpg --fingerprint` shows them. When given, only listed keys may verify the upstream
     * Release, whichever of `key`, `keyUrl` and `keyring` supplied them; other keys are ignored.
     */
    keyFingerprints?: pulumi.Input<pulumi.Input<string>[]>;
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
    /**
     * Writes `Valid-Until` (the publish time plus this) into the published Release, so apt clients
     * refuse the mirror once it is that stale: "7d", "12h", "30m", "90s" or a number of seconds.
     * A refresh reports a Release less than half this from expiry as drift, and the next
     * `pulumi up` signs it again. Defaults to none (no `Valid-Until`).
     */
    validFor?: pulumi.Input<string | number>;
    /**
     * The mirrors' engine state: verified downloads, the index cache, sync stamps, hash memos and
     * locks. It must be outside `root`, which is served. Defaults to `<root>.airgap`, a sibling of
     * the root, so that it is usually on the same file system and downloads are hard-linked into
     * the pool rather than copied. State an older version kept in `<root>/.airgap` is moved there.
     */
    stateDir?: pulumi.Input<string>;
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
    /**
     * Accept an upstream Release dated before the one last synced. Defaults to false: the lock
     * records the upstream Release `Date`, and preview refuses an older one (a server replaying
     * an old, still correctly signed Release to hold back updates).
     */
    allowDowngrade?: pulumi.Input<boolean>;
    /**
     * Also mirror the source packages of every locked binary (its `Source:` package, at the
     * version `Source: name (version)` gives, else its own) and publish `<component>/source/Sources`,
     * so `apt-get source` works against the mirror (with a `deb-src` line). Each file is checked
     * against the signed upstream `Sources`. The upstream must list a `Sources` index for every
     * component. Defaults to false.
     */
    withSources?: pulumi.Input<boolean>;
    /**
     * Also publish `<component>/Contents-<arch>.gz`, the path → package lists `apt-file` reads,
     * built from the packages' file lists one package at a time. Defaults to false.
     */
    contents?: pulumi.Input<boolean>;
    /**
     * debian-installer packages (udebs) to mirror, as package queries in the same syntax as
     * `packages` ("busybox-udeb", "Priority (standard)"), with their dependencies among udebs:
     * resolved against the upstream's verified `<component>/debian-installer/binary-<arch>/Packages`
     * when the mirror syncs (they are not in the lock, so preview does not list them), and
     * published under `<component>/debian-installer/binary-<arch>/`. The upstream must offer
     * debian-installer packages for every architecture. Defaults to none.
     */
    udebs?: pulumi.Input<pulumi.Input<string>[]>;
    /**
     * Other AptMirrors of this program (or plain sources) whose packages may satisfy this
     * mirror's dependencies, e.g. `{ from: [bookworm] }` for a security suite; see
     * `AptDependenciesArgs.from`. What they supply is listed in the `external` input.
     */
    dependencies?: pulumi.Input<AptDependenciesArgs>;
}

/** A resolved lock, and what the mirrors naming this one in `dependencies.from` read of it. */
type LockAndSources = AptProgramLock & { resolved: ResolvedMirror };

interface Resolved {
    source: AptSourceSpec;
    queries: string[];
    withDeps: boolean;
    followRecommends: boolean;
    publish: { root: string; stateDir?: string };
}

/**
 * Resolves the lock while the program runs (preview too), or reads it from the lock file. The
 * lock file also keeps the upstream Release date beside the packages (`upstreamDate`); a lock
 * file written without it still pins the packages, with no date to compare.
 */
async function lockFor(
    name: string,
    r: Resolved,
    lockFile: string | undefined,
    dependencies: AptDependencySpec[] = [],
): Promise<AptProgramLock> {
    const { url, distribution, components, architectures } = r.source;
    let resolved: AptProgramLock | undefined;
    const packages = await pinnedLock<AptLock>({
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
            ...dependencyInputs(dependencies),
        }),
        field: "packages",
        extra: { source: { url, distribution } },
        resolve: async () => {
            resolved = await resolveProgramLock({
                source: r.source,
                queries: r.queries,
                withDeps: r.withDeps,
                followRecommends: r.followRecommends,
                publish: r.publish,
                dryRun: pulumi.runtime.isDryRun(),
                ...(dependencies.length === 0 ? {} : { dependencies }),
            });
            return resolved.packages;
        },
    });
    if (resolved !== undefined) {
        const beside = resolved.upstreamDate !== undefined || resolved.external !== undefined;
        if (lockFile !== undefined && beside && !pulumi.runtime.isDryRun()) {
            writeUpstreamDate(lockFile, resolved.upstreamDate, resolved.external);
        }
        return resolved;
    }
    const upstreamDate = lockFile === undefined ? undefined : readUpstreamDate(lockFile);
    const external = lockFile === undefined || dependencies.length === 0 ? undefined : readExternal(lockFile);
    return {
        packages,
        ...(upstreamDate === undefined ? {} : { upstreamDate }),
        ...(external === undefined ? {} : { external }),
    };
}

/** The `external` a lock file keeps beside the packages (with `dependencies.from`). */
function readExternal(file: string): AptLock | undefined {
    const saved = readLockFile(path.resolve(file), file);
    const external = saved.external;
    return typeof external === "object" && external !== null && !Array.isArray(external)
        ? (external as AptLock)
        : undefined;
}

/** The `upstreamDate` of a lock file, or undefined (an older lock file, or none). */
function readUpstreamDate(file: string): string | undefined {
    // pinnedLock has just read and checked the same file.
    const saved = readLockFile(path.resolve(file), file);
    return typeof saved.upstreamDate === "string" ? saved.upstreamDate : undefined;
}

/** Adds `upstreamDate` (and `external`) to the lock file `pinnedLock` just wrote, atomically. */
function writeUpstreamDate(file: string, upstreamDate: string | undefined, external?: AptLock): void {
    const target = path.resolve(file);
    const saved = readLockFile(target, file);
    const content = {
        ...saved,
        ...(upstreamDate === undefined ? {} : { upstreamDate }),
        ...(external === undefined ? {} : { external }),
    };
    writeFileAtomic(target, `${JSON.stringify(content, null, 2)}\n`);
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
    public readonly packages: pulumi.Output<Record<string, string>>;
    /** Where the suite is published (as given). */
    declare public readonly publish: pulumi.Output<AptPublishSpec>;
    /** The upstream, with the default components and architectures filled in. */
    declare public readonly source: pulumi.Output<AptSourceSpec>;
    declare public readonly packageCount: pulumi.Output<number>;
    declare public readonly bytes: pulumi.Output<number>;
    declare public readonly releaseSha256: pulumi.Output<string>;
    declare public readonly publishedPath: pulumi.Output<string>;
    /** Armored public key for clients' Signed-By ("" when unsigned). */
    declare public readonly publicKey: pulumi.Output<string>;
    /** Problems found by the last refresh; empty when the mirror is as published. */
    declare public readonly drift: pulumi.Output<string[]>;
    /** `Date` of the upstream Release of the last sync (ISO 8601). */
    declare public readonly syncedReleaseDate: pulumi.Output<string | undefined>;
    /** `Valid-Until` of the published Release (ISO 8601), with `publish.validFor`. */
    declare public readonly validUntil: pulumi.Output<string | undefined>;
    /**
     * Dependencies other mirrors or sources of `dependencies.from` supply, not copied here:
     * `name/arch` → `version from <url> <suite>`.
     */
    public readonly external: pulumi.Output<Record<string, string> | undefined>;

    constructor(name: string, args: AptMirrorArgs, opts?: pulumi.CustomResourceOptions) {
        const source = pulumi.output(args.source).apply((s) => ({
            ...s,
            components: s.components ?? [...APT_DEFAULTS.components],
            architectures: s.architectures ?? [...APT_DEFAULTS.architectures],
        }));
        const node = mirrorNode(name);
        const lock = pulumi
            .all([source, args.packages, args.withDeps, args.followRecommends, args.publish, args.dependencies])
            .apply(([s, queries, withDeps, followRecommends, publish, dependencies]) => {
                // Suites of one prefix share its pool; one suite has one owner.
                const suite = publish.distribution ?? (s as AptSourceSpec).distribution;
                const named = [publish.root, publish.prefix, suite].every((v) => typeof v === "string");
                if (named)
                    claimPlaces(
                        `AptMirror "${name}"`,
                        "publish",
                        [`${placeOf(publish.root)}/${publish.prefix}/dists/${suite}`],
                        "publish each suite from one AptMirror (another prefix, or publish.distribution)",
                    );
                let specs: pulumi.Output<AptDependencySpec[]>;
                try {
                    specs = dependencySpecs(node, dependencies as AptDependenciesArgs | undefined);
                } catch (err) {
                    return pulumi.output(
                        resolvingInput<LockAndSources>("AptMirror", name, "dependencies", () => Promise.reject(err)),
                    );
                }
                return specs.apply((deps) =>
                    resolvingInput("AptMirror", name, "source", () =>
                        lockFor(
                            name,
                            {
                                source: s as AptSourceSpec,
                                queries,
                                withDeps: withDeps ?? APT_DEFAULTS.withDeps,
                                followRecommends: followRecommends ?? APT_DEFAULTS.followRecommends,
                                publish: { root: publish.root, stateDir: publish.stateDir },
                            },
                            args.lockFile,
                            deps,
                        ),
                    ).then((l) => ({
                        ...l,
                        resolved: { source: s as AptSourceSpec, packages: l.packages, dependencies: deps },
                    })),
                );
            });
        node.resolved = lock.apply((l): ResolvedMirror => l.resolved);
        super(
            forwardingProvider("pulumi-airgap/provider/apt/operations"),
            name,
            {
                source,
                // The lock as text, a `name/arch version` line each: preview shows a change to it
                // line by line, and the engine moves one string rather than a map of thousands.
                packages: lock.apply((l) => lockText(l.packages)),
                // What `dependencies.from` supplies: shown by preview, not copied.
                external: lock.apply((l) => (l.external === undefined ? undefined : lockText(l.external))),
                // The upstream Release date of the lock: check refuses one older than the last.
                upstreamDate: lock.apply((l) => l.upstreamDate),
                allowDowngrade: args.allowDowngrade ?? false,
                publish: args.publish,
                // Secret even when the program passes it as plain text: never in clear in the state.
                signing: args.signing === undefined ? undefined : pulumi.secret(args.signing),
                allowUnsigned: args.allowUnsigned ?? false,
                concurrency: args.concurrency,
                withSources: args.withSources,
                contents: args.contents,
                udebs: args.udebs,
                packageCount: undefined,
                bytes: undefined,
                releaseSha256: undefined,
                publishedPath: undefined,
                publicKey: undefined,
                drift: undefined,
                syncedReleaseDate: undefined,
                validUntil: undefined,
            },
            { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "signing"] },
            "airgap",
            "AptMirror",
        );
        // The lock's maps come from the program's resolution: the provider's state keeps only
        // the digest of their text (the inputs hold the text).
        this.packages = lock.apply((l) => l.packages);
        this.external = lock.apply((l) => l.external);
        node.register(this);
    }
}
