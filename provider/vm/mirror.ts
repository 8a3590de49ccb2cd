/**
 * The mirror VM image: the content of the program's mirrors in an ext4 filesystem, made with
 * `mke2fs -d` from a staging tree (no loop mounts, no root, no running VM), as a qcow2 data disk,
 * or appended to a bootable base image with a cloud-init NoCloud seed that mounts it and starts
 * the services (provider/vm/services.ts).
 *
 * Beside `output`, `<output>.airgap/` holds the engine's state: the lock (one build per output),
 * the ownership record (the SHA256 of the image this resource wrote: an `output` that was not
 * written here is never overwritten or removed), the hash memo of the `files` trees, and the
 * build directory while a build runs. The image is written beside `output` and renamed into
 * place: a failed or killed build leaves the previous image as it was.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { AirgapError, invalidArgument, type Problem, problemOf } from "../errors";
import { writeFileAtomic } from "../store/atomic";
import { canonicalJson } from "../store/canonical";
import { HashMemo, sha256OfFile } from "../store/hashcache";
import { type HeldLock, takeLock } from "../store/lockfile";
import {
    aptSuites,
    type ContentPart,
    checkServedPath,
    contentDigest,
    contentParts,
    domainComponent,
    fixStagedTimes,
    stageContent,
    type VmAptSuite,
    type VmContentSpec,
    vmImages,
} from "./content";
import { assembleImage, defaultTimestamp, ext4SizeFor, inspectImage, makeExt4, makeSeedIso, parseSize } from "./disk";
import { registryStorageSize, writeRegistryStorage } from "./registry_storage";
import {
    checkNetwork,
    checkServices,
    DATA_LABEL,
    DEFAULT_SERVICES,
    renderMetaData,
    renderNetworkConfig,
    renderNginxSite,
    renderRegistryConfig,
    renderUserData,
    type VmNetwork,
    type VmServices,
} from "./services";

export interface MirrorVmSpec extends VmContentSpec {
    /** The resource's name: the default host name, and in messages. */
    name: string;
    /** The qcow2 image to write. */
    output: string;
    /** A bootable qcow2 or raw Debian cloud image with nginx, docker-registry and cloud-init. */
    baseImage?: string;
    services?: Partial<VmServices>;
    network?: VmNetwork;
    sshAuthorizedKeys?: string[];
    /** The VM's host name. Defaults to the resource name. */
    hostname?: string;
    /** The name or address hosts reach the VM by. Defaults to network.address, else the host name. */
    address?: string;
    /** Refuse content larger than this ("200G", "512M", bytes). */
    maxSize?: string;
    /** Compress the qcow2 clusters. Defaults to false. */
    compress?: boolean;
    /** Set by check: part name → digest. Preview shows which part changed. */
    content?: Record<string, string>;
    /** Set by check: SHA256 of the base image. */
    baseImageSha256?: string;
}

export interface VmUrls {
    apt: string;
    registry: string;
    git: string;
    files: string;
}

/** HostMirrorConfig arguments that point a host at the VM. */
export interface VmHostConfig {
    registries: { source: string; mirrors: string[]; mirrorByDigestOnly: boolean; insecure: boolean }[];
    apt: { name: string; uris: string[]; suites: string[]; components: string[]; signedBy: string }[];
}

export interface MirrorVmState extends MirrorVmSpec {
    path: string;
    sha256: string;
    virtualSizeBytes: number;
    actualSizeBytes: number;
    contentDigest: string;
    contentBytes: number;
    urls: VmUrls;
    hostConfig: VmHostConfig;
    /** Problems found by the last refresh; empty when the image is as built. */
    drift: string[];
}

/** A build does not wait for another build of the same output: two resources writing one image is an error. */
const LOCK_WAIT_MS = 0;

/** `output` spelled one way: its directory resolved, symbolic links followed. */
export function placeOfOutput(output: string): string {
    const resolved = path.resolve(output);
    try {
        return path.join(fs.realpathSync(path.dirname(resolved)), path.basename(resolved));
    } catch {
        return resolved;
    }
}

export function stateDirOf(output: string): string {
    return `${placeOfOutput(output)}.airgap`;
}

function servicesOf(spec: MirrorVmSpec): VmServices {
    return { ...DEFAULT_SERVICES, ...(spec.services ?? {}) };
}

function hostnameOf(spec: MirrorVmSpec): string {
    return (
        spec.hostname ??
        (spec.name
            .toLowerCase()
            .replace(/[^a-z0-9-]+/g, "-")
            .replace(/^-+|-+$/g, "") ||
            "mirror")
    );
}

function addressOf(spec: MirrorVmSpec): string {
    return spec.address ?? spec.network?.address.replace(/\/\d+$/, "") ?? hostnameOf(spec);
}

/** Every problem with the inputs that can be told without reading the content. */
export async function validateMirrorVmSpec(spec: MirrorVmSpec): Promise<Problem[]> {
    const problems: Problem[] = [];
    const attempt = async (argument: string, check: () => unknown) => {
        try {
            await check();
        } catch (err) {
            const arg = (err as { argument?: string }).argument ?? argument;
            problems.push({ argument: arg, problem: problemOf(err, arg) });
        }
    };
    await attempt("output", () => checkOutput(spec.output));
    if (spec.baseImage !== undefined) {
        await attempt("baseImage", () => {
            if (typeof spec.baseImage !== "string" || !path.isAbsolute(spec.baseImage)) {
                throw invalidArgument("baseImage", `${JSON.stringify(spec.baseImage)} must be an absolute path`);
            }
            return inspectImage("baseImage", spec.baseImage);
        });
    }
    await attempt("services", () => checkServices(servicesOf(spec)));
    if (spec.network !== undefined) await attempt("network", () => checkNetwork(spec.network!));
    if (spec.maxSize !== undefined) await attempt("maxSize", () => parseSize("maxSize", spec.maxSize!));
    for (const [i, key] of (spec.sshAuthorizedKeys ?? []).entries()) {
        if (typeof key !== "string" || !/^(ssh-|ecdsa-|sk-)\S+ \S+/.test(key) || key.includes("\n")) {
            problems.push({
                argument: `sshAuthorizedKeys[${i}]`,
                problem: 'must be one public key line such as "ssh-ed25519 AAAA… user@host"',
            });
        }
    }
    if (spec.hostname !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(spec.hostname)) {
        problems.push({ argument: "hostname", problem: `${JSON.stringify(spec.hostname)} is not a host name` });
    }
    for (const kind of ["files", "git"] as const) {
        const seen = new Set<string>();
        for (const [i, entry] of (spec[kind] ?? []).entries()) {
            await attempt(`${kind}[${i}].path`, () => {
                const served = checkServedPath(`${kind}[${i}].path`, entry.path);
                if (seen.has(served)) throw invalidArgument(`${kind}[${i}].path`, `"${served}" is listed twice`);
                seen.add(served);
            });
            if (typeof entry.source !== "string" || !path.isAbsolute(entry.source)) {
                problems.push({
                    argument: `${kind}[${i}].source`,
                    problem: `${JSON.stringify(entry.source)} must be an absolute path`,
                });
            } else if (!fs.existsSync(entry.source)) {
                problems.push({ argument: `${kind}[${i}].source`, problem: `"${entry.source}" does not exist` });
            }
        }
    }
    return problems;
}

function checkOutput(output: unknown): void {
    if (typeof output !== "string" || !path.isAbsolute(output) || output.endsWith("/")) {
        throw invalidArgument("output", `${JSON.stringify(output)} must be an absolute file path`);
    }
    const dir = path.dirname(output);
    const info = fs.statSync(dir, { throwIfNoEntry: false });
    if (info === undefined || !info.isDirectory()) {
        throw invalidArgument("output", `the directory "${dir}" does not exist`);
    }
    try {
        fs.accessSync(dir, fs.constants.W_OK);
    } catch {
        throw invalidArgument("output", `the directory "${dir}" is not writable`);
    }
    const existing = fs.statSync(output, { throwIfNoEntry: false });
    if (existing !== undefined && !existing.isFile()) {
        throw invalidArgument("output", `"${output}" exists and is not a file`);
    }
}

/** The content's parts and the base image's SHA256, as check puts them into the inputs. */
export async function describeContent(
    spec: MirrorVmSpec,
): Promise<{ content: Record<string, string>; baseImageSha256?: string }> {
    const memo = await HashMemo.load(path.join(stateDirOf(spec.output), "hashes"));
    const parts = await contentParts(spec, { memo });
    const content: Record<string, string> = {};
    for (const p of parts) content[p.name] = p.digest;
    return {
        content,
        ...(spec.baseImage === undefined
            ? {}
            : { baseImageSha256: (await memo.verifiedSha256(spec.baseImage))?.sha256 ?? "" }),
    };
}

interface OwnerRecord {
    /** SHA256 of the image this resource last wrote at `output`. */
    sha256?: string;
    /** A build was replacing the image: what is at `output` may be the one it wrote. */
    building?: boolean;
}

function readOwner(stateDir: string): OwnerRecord | undefined {
    try {
        return JSON.parse(fs.readFileSync(path.join(stateDir, "owner.json"), "utf8")) as OwnerRecord;
    } catch {
        return undefined;
    }
}

function writeOwner(stateDir: string, record: OwnerRecord): void {
    writeFileAtomic(path.join(stateDir, "owner.json"), `${JSON.stringify(record)}\n`);
}

async function lockOutput(output: string): Promise<HeldLock> {
    const stateDir = stateDirOf(output);
    await fsp.mkdir(stateDir, { recursive: true });
    try {
        return await takeLock(path.join(stateDir, "lock"), LOCK_WAIT_MS);
    } catch (err) {
        throw new AirgapError(
            "ERR_CONFLICT",
            `output: another build is writing ${output} (${(err as Error).message}); give each MirrorVM its own output`,
            { argument: "output", cause: err },
        );
    }
}

/** Refuses an image at `output` that this resource did not write. */
async function checkOwnership(output: string, stateDir: string): Promise<void> {
    if (!fs.existsSync(output)) return;
    const owner = readOwner(stateDir);
    if (owner?.building) return;
    const actual = await sha256OfFile(output);
    if (owner?.sha256 !== actual) {
        throw new AirgapError(
            "ERR_CONFLICT",
            `output: "${output}" exists and was not written by this MirrorVM${owner?.sha256 ? " (it changed since)" : ""}; move it away or choose another output`,
            { argument: "output" },
        );
    }
}

function uuidFrom(digest: string, salt: string): string {
    const h = createHash("sha256").update(`${salt}\0${digest}`).digest("hex");
    // RFC 4122 layout, version 4 and variant bits set: a valid UUID derived from the content.
    const v = `4${h.slice(13, 16)}`;
    const r = ((Number.parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16) + h.slice(17, 20);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${v}-${r}-${h.slice(20, 32)}`;
}

function describeBytes(n: number): string {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < units.length - 1) {
        v /= 1024;
        i++;
    }
    return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function checkMaxSize(spec: MirrorVmSpec, parts: readonly ContentPart[], bytes: number, what: string): void {
    if (spec.maxSize === undefined) return;
    const max = parseSize("maxSize", spec.maxSize);
    if (bytes > max) {
        const biggest = [...parts]
            .sort((a, b) => b.bytes - a.bytes)
            .slice(0, 3)
            .map((p) => `${p.name} ${describeBytes(p.bytes)}`);
        throw invalidArgument(
            "maxSize",
            `the ${what} is ${describeBytes(bytes)}, above maxSize ${spec.maxSize} (${describeBytes(max)}); largest parts: ${biggest.join(", ")}`,
        );
    }
}

export function urlsOf(spec: MirrorVmSpec): VmUrls {
    const s = servicesOf(spec);
    const address = addressOf(spec);
    const host = address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
    const http = (port: number) => `http://${host}${port === 80 ? "" : `:${port}`}/`;
    return {
        apt: http(s.aptPort),
        registry: `${host}:${s.registryPort}`,
        git: http(s.gitPort),
        files: http(s.filesPort),
    };
}

export function hostConfigOf(spec: MirrorVmSpec, suites: readonly VmAptSuite[]): VmHostConfig {
    const urls = urlsOf(spec);
    const domains = [...new Set(vmImages(spec.images).map((i) => i.sourceDomain))].sort();
    return {
        registries: domains.map((d) => ({
            source: d,
            mirrors: [`${urls.registry}/${domainComponent(d)}`],
            mirrorByDigestOnly: true,
            insecure: true,
        })),
        apt: suites
            .filter((s) => s.publicKey)
            .map((s) => {
                const prefix = s.prefix.replace(/\/+$/, "");
                return {
                    name: `${spec.name}-${prefix === "" ? "" : `${prefix.replace(/\//g, "-")}-`}${s.distribution}`,
                    uris: [`${urls.apt}${prefix}`.replace(/\/$/, "")],
                    suites: [s.distribution],
                    components: s.components,
                    signedBy: s.publicKey!,
                };
            }),
    };
}

export interface BuildOptions {
    log?: (line: string) => void;
    signal?: AbortSignal;
    /**
     * The resource already owns `output` (an update): an image there that changed since it was
     * built (booted in place, edited) is replaced. Otherwise (a create) an image there that this
     * resource did not write is refused.
     */
    owned?: boolean;
}

/** Builds the image at `output` (see the module comment). */
export async function buildMirrorVm(spec: MirrorVmSpec, options: BuildOptions = {}): Promise<MirrorVmState> {
    const problems = await validateMirrorVmSpec(spec);
    if (problems.length > 0) {
        const first = problems[0]!;
        throw invalidArgument(
            first.argument,
            problems.map((p) => (p === first ? p.problem : `${p.argument}: ${p.problem}`)).join("; "),
        );
    }
    const log = options.log ?? ((line: string) => console.error(`[vm ${spec.name}] ${line}`));
    const output = placeOfOutput(spec.output);
    const stateDir = stateDirOf(output);
    const lock = await lockOutput(output);
    let work: string | undefined;
    try {
        await removeStaleBuilds(stateDir, output);
        if (!options.owned) await checkOwnership(output, stateDir);
        const started = Date.now();
        const memo = await HashMemo.load(path.join(stateDir, "hashes"));
        const images = vmImages(spec.images);
        const parts = await contentParts(spec, {
            memo,
            imageBytes: (list) => registryStorageSize(list),
        });
        const digest = contentDigest(parts);
        const contentBytes = parts.reduce((n, p) => n + p.bytes, 0);
        checkMaxSize(spec, parts, contentBytes, "content");
        const suites = await aptSuites(spec.apt);
        if (spec.baseImage !== undefined) await inspectImage("baseImage", spec.baseImage);

        work = await fsp.mkdtemp(path.join(stateDir, "build-"));
        const tree = path.join(work, "tree");
        await fsp.mkdir(tree);
        log(`staging ${parts.length} parts (${describeBytes(contentBytes)})`);
        await stageContent(spec, tree, { log, signal: options.signal });
        const registry = path.join(tree, "registry");
        await fsp.mkdir(registry, { recursive: true });
        if (images.length > 0) {
            log(`registry: ${images.length} images`);
            await writeRegistryStorage(registry, images, { log, signal: options.signal });
        }
        const services = servicesOf(spec);
        const config = path.join(tree, "airgap");
        await fsp.mkdir(config, { recursive: true });
        await fsp.writeFile(path.join(config, "nginx.conf"), renderNginxSite(services));
        await fsp.writeFile(path.join(config, "registry.yml"), renderRegistryConfig(services));
        await fsp.writeFile(
            path.join(config, "content.json"),
            `${JSON.stringify({ contentDigest: digest, parts: Object.fromEntries(parts.map((p) => [p.name, p.digest])) }, null, 2)}\n`,
        );

        await fixStagedTimes(tree, ["registry", "git", "airgap"], defaultTimestamp());
        const size = await ext4SizeFor(tree);
        checkMaxSize(spec, parts, size.fsBytes, "data filesystem");
        log(`data filesystem: ${describeBytes(size.fsBytes)} for ${describeBytes(size.contentBytes)}`);
        const dataImage = path.join(work, "data.ext4");
        await makeExt4({
            tree,
            out: dataImage,
            sizeBytes: size.fsBytes,
            label: DATA_LABEL,
            uuid: uuidFrom(digest, "data"),
            signal: options.signal,
        });
        await fsp.rm(tree, { recursive: true, force: true });
        const partitions = [{ file: dataImage, name: DATA_LABEL }];
        if (spec.baseImage !== undefined) {
            const seed = path.join(work, "seed.iso");
            const hostname = hostnameOf(spec);
            await makeSeedIso({
                out: seed,
                userData: renderUserData({ hostname, sshAuthorizedKeys: spec.sshAuthorizedKeys }),
                metaData: renderMetaData(
                    `airgap-${digest.slice(7, 23)}-${buildInputsDigest(spec).slice(0, 8)}`,
                    hostname,
                ),
                ...(spec.network === undefined ? {} : { networkConfig: renderNetworkConfig(spec.network) }),
            });
            partitions.push({ file: seed, name: "cidata" });
        }
        writeOwner(stateDir, { ...readOwner(stateDir), building: true });
        const image = await assembleImage({
            out: output,
            workDir: work,
            ...(spec.baseImage === undefined ? {} : { base: spec.baseImage }),
            partitions,
            compress: spec.compress ?? false,
            signal: options.signal,
            log,
        });
        writeOwner(stateDir, { sha256: image.sha256 });
        await memo.save();
        log(
            `built ${output} in ${((Date.now() - started) / 1000).toFixed(1)} s: ${describeBytes(image.actualSizeBytes)}`,
        );
        return {
            ...spec,
            path: output,
            sha256: image.sha256,
            virtualSizeBytes: image.virtualSizeBytes,
            actualSizeBytes: image.actualSizeBytes,
            contentDigest: digest,
            contentBytes,
            urls: urlsOf(spec),
            hostConfig: hostConfigOf(spec, suites),
            drift: [],
        };
    } finally {
        if (work !== undefined) await fsp.rm(work, { recursive: true, force: true }).catch(() => {});
        // A first build that failed leaves nothing beside `output`: the state goes with the lock.
        const first = !fs.existsSync(output);
        if (first) {
            for (const f of ["owner.json", "hashes"]) await fsp.rm(path.join(stateDir, f), { force: true });
        }
        await lock.release();
        // Only when empty: another build may have taken the lock in the meantime.
        if (first) await fsp.rmdir(stateDir).catch(() => {});
    }
}

/** What changes the image apart from its content: the seed's and the layout's inputs. */
function buildInputsDigest(spec: MirrorVmSpec): string {
    return createHash("sha256")
        .update(
            canonicalJson({
                services: servicesOf(spec),
                network: spec.network ?? null,
                keys: spec.sshAuthorizedKeys ?? [],
                hostname: hostnameOf(spec),
                base: spec.baseImageSha256 ?? spec.baseImage ?? null,
            }),
        )
        .digest("hex");
}

/**
 * What runs that were killed left: their build directories, and the image they were writing
 * beside `output` (`<output>.<12 hex>.tmp`). The lock is held, so none of them is running.
 */
async function removeStaleBuilds(stateDir: string, output: string): Promise<void> {
    for (const name of await fsp.readdir(stateDir).catch(() => [] as string[])) {
        if (name.startsWith("build-")) {
            await fsp.rm(path.join(stateDir, name), { recursive: true, force: true });
        }
    }
    const base = path.basename(output);
    for (const name of await fsp.readdir(path.dirname(output)).catch(() => [] as string[])) {
        if (name.startsWith(`${base}.`) && /^\.[0-9a-f]{12}\.tmp/.test(name.slice(base.length))) {
            await fsp.rm(path.join(path.dirname(output), name), { force: true });
        }
    }
}

/** Drift: the image missing, or not the bytes built. Tolerant of older states. */
export async function readMirrorVm(state: MirrorVmState): Promise<MirrorVmState> {
    const output = state.path ?? state.output;
    const drift: string[] = [];
    if (!fs.existsSync(output)) {
        drift.push(`${output} is missing`);
    } else if (state.sha256) {
        const actual = await sha256OfFile(output);
        if (actual !== state.sha256) {
            drift.push(`${output} was altered: SHA256 ${actual}, built ${state.sha256}`);
        }
    }
    return { ...state, drift };
}

/** Removes the image this resource wrote; refuses one that changed since (it is not ours to delete). */
export async function removeMirrorVm(state: MirrorVmState): Promise<void> {
    const output = placeOfOutput(state.path ?? state.output);
    const stateDir = stateDirOf(output);
    const lock = await lockOutput(output);
    try {
        if (fs.existsSync(output)) {
            const actual = await sha256OfFile(output);
            const owner = readOwner(stateDir);
            if (actual !== state.sha256 && actual !== owner?.sha256) {
                throw new AirgapError(
                    "ERR_CONFLICT",
                    `output: "${output}" is not the image this MirrorVM built (SHA256 ${actual}, built ${state.sha256}); it was left in place: remove it by hand if it is not needed`,
                    { argument: "output" },
                );
            }
            await fsp.rm(output);
        }
    } finally {
        await lock.release();
    }
    await fsp.rm(stateDir, { recursive: true, force: true });
}
