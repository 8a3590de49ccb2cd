/** What a publish is asked to do, checked and planned before anything is written (publish.ts, step 1). */

import { invalidArgument } from "../errors";
import type { SigningOptions } from "../pgp/sign";
import type { HashMemo } from "../store/hashcache";
import { unsafePathReason } from "./control";
import { type PlaceMode, poolPath } from "./pool";
import { checkName, repoDirOf } from "./publish_layout";
import type { ReleaseFile } from "./release";
import { compareVersions } from "./version";
import { type PublishSource, type SourceRecord, sourcePoolFiles } from "./sources";
import type { PackageRecord } from "./types";

/** A package to publish: its record and a local file holding its bytes. */
export interface PublishPackage {
    /**
     * The record as read from upstream (`toPackageRecord`). Its stanza becomes the `Packages`
     * entry, with `Filename` rewritten to the pool path and `Size`/`SHA256` from the record; other
     * checksum fields are dropped (they were not verified).
     */
    readonly record: PackageRecord;
    /** The package file (content store, download directory); MUST match `record.sha256` and `record.size`. */
    readonly file: string;
    /**
     * A debian-installer package: published as `.udeb` and listed in
     * `<component>/debian-installer/binary-<arch>/Packages` only.
     */
    readonly udeb?: boolean;
}

/** A pool file that is not a binary package (a source package's file). */
export interface PoolFile {
    readonly file: string;
    readonly sha256: string;
    readonly size: number;
    /** What it belongs to, for messages ("source openssl 3.0.11-1"). */
    readonly what: string;
}

/**
 * Writes one more compressed form of every `Packages` index, e.g. `.xz`. apt picks the forms
 * the `Release` lists; `Packages` and `Packages.gz` are always written.
 */
export interface IndexCompressor {
    /** File name extension with its dot: ".xz", ".zst". */
    readonly extension: string;
    compress(data: Buffer): Buffer | Promise<Buffer>;
}

/** Points where a test (or a caller that wants to observe) can step in; a hook that throws aborts the publish. */
export interface PublishHooks {
    /** After the new pool files are placed, before the suite is built. */
    afterPool?(): void | Promise<void>;
    /** The new generation is complete on disk; `dists/<dist>` still shows the previous one. */
    beforeSwitch?(info: { generation: string; dir: string }): void | Promise<void>;
    /** Right after the switch, before garbage is collected. */
    afterSwitch?(info: { generation: string; dir: string }): void | Promise<void>;
}

export interface PublishOptions {
    /** The directory the repositories are served from. */
    readonly root: string;
    /** Sub-directory of `root` for this repository ("debian", "mirrors/ubuntu"). Defaults to "" (the root). */
    readonly prefix?: string;
    /** The suite, also the directory under `dists/` ("stable", "bookworm-updates"). */
    readonly distribution: string;
    /** Defaults to the distribution. */
    readonly codename?: string;
    readonly origin?: string;
    /** Defaults to the origin. */
    readonly label?: string;
    readonly description?: string;
    /** The `Version:` field of the Release, when the suite has one ("12.5"). */
    readonly version?: string;
    /** Components, in the order the Release lists them. Every package's component MUST be one of them. */
    readonly components: readonly string[];
    /** Binary architectures ("amd64", "arm64"); packages of architecture `all` go into each. */
    readonly architectures: readonly string[];
    readonly packages: readonly PublishPackage[];
    /** The key that signs `InRelease` and `Release.gpg`. Required unless `allowUnsigned`. */
    readonly signing?: SigningOptions;
    /** Publish without `InRelease`/`Release.gpg` when `signing` is absent. Defaults to false. */
    readonly allowUnsigned?: boolean;
    /** Write `Acquire-By-Hash: yes` and the by-hash copies. Defaults to true. */
    readonly acquireByHash?: boolean;
    /** More compressed forms of the indexes (see `IndexCompressor`). Defaults to none. */
    readonly compressors?: readonly IndexCompressor[];
    /** How pool files are made from `PublishPackage.file`. Defaults to "hardlink". */
    readonly placeMode?: PlaceMode;
    /** The Release `Date:` and signature time. Defaults to now. */
    readonly date?: Date;
    readonly validUntil?: Date;
    readonly notAutomatic?: boolean;
    readonly butAutomaticUpgrades?: boolean;
    /** How long to wait for another publisher of the same prefix. Defaults to 10 minutes. */
    readonly lockTimeoutMs?: number;
    readonly hooks?: PublishHooks;
    /**
     * Verified hashes of pool files (see `store/hashcache.ts`): a pool file kept from an earlier
     * publish, or a hard link to a download verified in this run, is not read again. Defaults to
     * hashing every pool file.
     */
    readonly hashMemo?: HashMemo;
    /**
     * When the suite published now is exactly what this publish would write (the same `Packages`
     * indexes and compressed forms, the same Release fields, signed by the same key, no
     * `validUntil` to renew) and every pool file it names still has its SHA256, make no new
     * generation: return the current one, with `placed` and `removed` empty. Anything that
     * differs (drift included) publishes normally. Hooks are not called then. Defaults to false.
     */
    readonly skipIfUnchanged?: boolean;
    /**
     * Source packages: when given (even empty), `<component>/source/Sources` is published for
     * every component, and their files in the pool beside the binaries.
     */
    readonly sources?: readonly PublishSource[];
    /**
     * Write `<component>/Contents-<arch>.gz` (the file list apt-file reads) from the packages'
     * `data.tar`, one package at a time. Defaults to false.
     */
    readonly contents?: boolean;
    /** debian-installer packages, published as `.udeb` in `<component>/debian-installer/binary-<arch>/`. */
    readonly udebs?: readonly PublishPackage[];
}

/** A package as published: the fields of its upstream record that the indexes carry (`filename` is the pool path). */
export type PublishedPackage = Pick<
    PackageRecord,
    "name" | "version" | "architecture" | "component" | "filename" | "size" | "sha256"
>;

export interface PublishResult {
    /** `<root>/<prefix>`. */
    readonly repoDir: string;
    readonly distribution: string;
    /** The generation now behind `dists/<dist>`. */
    readonly generation: string;
    readonly packages: readonly PublishedPackage[];
    /** The index files the Release lists (paths relative to `dists/<dist>`). */
    readonly indexes: readonly ReleaseFile[];
    /** Pool paths written by this publish, and those found already in place. */
    readonly placed: readonly string[];
    readonly kept: readonly string[];
    /** Pool paths removed because no published suite names them any more. */
    readonly removed: readonly string[];
    /** Fingerprints of the signing keys; empty when unsigned. */
    readonly fingerprints: readonly string[];
    /** Armored public keys for clients' `Signed-By`; "" when unsigned. */
    readonly publicKeyArmored: string;
}

/** What the checks of `planPublish` settle before anything is written. */
export interface PublishPlan {
    readonly repoDir: string;
    readonly distribution: string;
    readonly components: readonly string[];
    readonly architectures: readonly string[];
    /** Packages by pool path (duplicates merged). */
    readonly byPool: ReadonlyMap<string, PublishPackage>;
    /** Source packages, sorted by name and version, when `sources` was given. */
    readonly sources?: readonly SourceRecord[];
    /** The other pool files (source packages'), by pool path. */
    readonly extraPool?: ReadonlyMap<string, PoolFile>;
    /** Whether Contents indexes are written. */
    readonly contents?: boolean;
}

function checkLine(argument: string, value: string | undefined): void {
    if (value === undefined) {
        return;
    }
    // A clearsigned text loses trailing white space (RFC 4880 §7.1), so InRelease would not
    // match Release; a line break would start a new field.
    if (typeof value !== "string" || value === "" || value.trim() !== value || /[\r\n]/.test(value)) {
        throw invalidArgument(argument, "must be one line without leading or trailing white space");
    }
}

/** Checks every option and settles the pool layout. Pure: reads and writes nothing. */
export function planPublish(options: PublishOptions): PublishPlan {
    const repoDir = repoDirOf(options.root, options.prefix ?? "");
    checkName("distribution", options.distribution);
    if (options.codename !== undefined) {
        checkName("codename", options.codename);
    }
    for (const field of ["origin", "label", "description", "version"] as const) {
        checkLine(field, options[field]);
    }
    if (options.components.length === 0) {
        throw invalidArgument("components", 'is empty: give at least one component, e.g. ["main"]');
    }
    options.components.forEach((component, i) => {
        const unsafe = unsafePathReason(component);
        if (
            unsafe !== undefined ||
            !component.split("/").every((segment) => /^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(segment))
        ) {
            throw invalidArgument(`components[${i}]`, `${JSON.stringify(component)} is not a component name`);
        }
        if (options.components.indexOf(component) !== i) {
            throw invalidArgument(`components[${i}]`, `${JSON.stringify(component)} is listed twice`);
        }
    });
    if (options.architectures.length === 0) {
        throw invalidArgument("architectures", 'is empty: give at least one architecture, e.g. ["amd64"]');
    }
    options.architectures.forEach((architecture, i) => {
        checkName(`architectures[${i}]`, architecture);
        if (architecture === "all") {
            throw invalidArgument(
                `architectures[${i}]`,
                '"all" is not a binary architecture: packages of architecture all go into every binary-<arch> index',
            );
        }
        if (options.architectures.indexOf(architecture) !== i) {
            throw invalidArgument(`architectures[${i}]`, `${JSON.stringify(architecture)} is listed twice`);
        }
    });
    for (const compressor of options.compressors ?? []) {
        if (!/^\.[a-z0-9]+$/.test(compressor.extension) || compressor.extension === ".gz") {
            throw invalidArgument("compressors", `extension ${JSON.stringify(compressor.extension)} is not allowed`);
        }
    }
    const byPool = new Map<string, PublishPackage>();
    const packages = [...options.packages, ...(options.udebs ?? []).map((pkg) => ({ ...pkg, udeb: true }))];
    packages.forEach((pkg, i) => {
        const record = pkg.record;
        const argument = `packages[${i}]`;
        const who = `${record.name} ${record.version} ${record.architecture}`;
        if (!options.components.includes(record.component)) {
            throw invalidArgument(
                `${argument}.record.component`,
                `${who}: component ${JSON.stringify(record.component)} is not in components (${options.components.join(", ")})`,
            );
        }
        if (record.architecture !== "all" && !options.architectures.includes(record.architecture)) {
            throw invalidArgument(
                `${argument}.record.architecture`,
                `${who}: architecture ${record.architecture} is not in architectures (${options.architectures.join(", ")})`,
            );
        }
        if (!/^[0-9a-f]{64}$/.test(record.sha256) || !Number.isSafeInteger(record.size) || record.size < 0) {
            throw invalidArgument(`${argument}.record`, `${who}: needs a lower-case hex SHA256 and a byte size`);
        }
        if (typeof pkg.file !== "string" || pkg.file === "") {
            throw invalidArgument(`${argument}.file`, `${who}: give the local file holding the package`);
        }
        const target = pkg.udeb === true ? poolPath(record).replace(/\.deb$/, ".udeb") : poolPath(record);
        const unsafe = unsafePathReason(target);
        if (unsafe !== undefined) {
            throw invalidArgument(`${argument}.record`, `${who}: pool path ${JSON.stringify(target)} ${unsafe}`);
        }
        const other = byPool.get(target);
        if (other !== undefined && other.record.sha256 !== record.sha256) {
            throw invalidArgument(
                `${argument}.record`,
                `${who}: two different files would be published as ${target} (SHA256 ${other.record.sha256} and ${record.sha256})`,
            );
        }
        if (other === undefined) {
            byPool.set(target, pkg);
        }
    });
    const extraPool = new Map<string, PoolFile>();
    (options.sources ?? []).forEach((source, i) => {
        const argument = `sources[${i}]`;
        if (!options.components.includes(source.record.component)) {
            throw invalidArgument(
                `${argument}.record.component`,
                `source ${source.record.name} ${source.record.version}: component ${JSON.stringify(source.record.component)} is not in components (${options.components.join(", ")})`,
            );
        }
        for (const [target, file] of sourcePoolFiles([source])) {
            const unsafe = unsafePathReason(target);
            if (unsafe !== undefined) {
                throw invalidArgument(
                    `${argument}.record`,
                    `${file.what}: pool path ${JSON.stringify(target)} ${unsafe}`,
                );
            }
            if (file.file === "") {
                throw invalidArgument(`${argument}.files`, `${file.what}: give the local file of ${target}`);
            }
            const other = byPool.get(target)?.record.sha256 ?? extraPool.get(target)?.sha256;
            if (other !== undefined && other !== file.sha256) {
                throw invalidArgument(
                    `${argument}.record`,
                    `${file.what}: two different files would be published as ${target} (SHA256 ${other} and ${file.sha256})`,
                );
            }
            extraPool.set(target, file);
        }
    });
    return {
        repoDir,
        distribution: options.distribution,
        components: [...options.components],
        architectures: [...options.architectures],
        byPool,
        ...(options.sources === undefined
            ? {}
            : {
                  sources: options.sources
                      .map((s) => s.record)
                      .sort((a, b) =>
                          a.name < b.name ? -1 : a.name > b.name ? 1 : compareVersions(a.version, b.version),
                      ),
                  extraPool,
              }),
        ...(options.contents === true ? { contents: true } : {}),
    };
}
