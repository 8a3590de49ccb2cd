/**
 * HostMirrorConfig's provider operations, called by the dynamic provider at run time.
 * `read` and `delete` run the code stored in state by older versions too: they accept records
 * without the fields added since (see FileRecord.dirs).
 *
 * Each operation opens one transport (one SSH connection) to its host and closes it at the end.
 * Operations on different hosts run concurrently (the engine calls them so), at most
 * `maxConnections()` at a time in this provider process.
 */
import * as path from "node:path";
import { checkWith, containsUnknown, type DiffResult, type Operations } from "../dynamic/contract";
import { sha256 } from "../store/atomic";
import { canonicalJson } from "../store/canonical";
import { applyHost, readFiles, removeFiles } from "./apply";
import { derivedPaths, listDirs, renderHostFiles } from "./render";
import { openTransport, placeOfTarget, rootOf } from "./target";
import type { HostTransport } from "./transport";
import type { FileRecord, HostFile, HostMirrorSpec } from "./types";
import { assertValidHostMirrorSpec, validateHostMirrorSpec } from "./validate";

/** The inputs as the provider receives them: the SDK passes an SSH key beside the target, as a secret. */
export interface HostMirrorInputs extends HostMirrorSpec {
    /** `target.ssh.privateKey`, kept out of `target` so that only the key is secret in the state. */
    sshPrivateKey?: string;
}

export interface HostMirrorState extends HostMirrorInputs {
    /** Path (relative to root) → SHA256 of the file as last read; "" when it is missing. */
    files: Record<string, string>;
    /** What was written (hash as written), and what to put back on destroy. */
    records: FileRecord[];
}

/** State keys that are not inputs. Every other key is an input (a new spec field needs no change here). */
const outputKeys = new Set(["files", "records"]);

function inputsOf(spec: HostMirrorInputs): Record<string, unknown> {
    return Object.fromEntries(
        Object.entries(spec).filter(([k, v]) => !outputKeys.has(k) && v !== undefined && !k.startsWith("__")),
    );
}

/** The spec with the SSH key where the engine reads it. */
function resolved(spec: HostMirrorInputs): HostMirrorSpec {
    const ssh = spec.target?.ssh;
    if (ssh && ssh.privateKey === undefined && spec.sshPrivateKey !== undefined) {
        return { ...spec, target: { ...spec.target, ssh: { ...ssh, privateKey: spec.sshPrivateKey } } };
    }
    return spec;
}

/** The inputs with the target spelled as `placeOfTarget` does: what check hands on and the state keeps. */
function normalized<S extends HostMirrorSpec>(spec: S): S {
    return spec.target?.local && typeof rootOf(spec) === "string" && path.isAbsolute(rootOf(spec))
        ? { ...spec, target: { ...spec.target, local: { ...spec.target.local, root: placeOfTarget(spec) } } }
        : spec;
}

function stateOf(spec: HostMirrorInputs, records: FileRecord[], current?: FileRecord[]): HostMirrorState {
    return {
        ...(inputsOf(spec) as unknown as HostMirrorInputs),
        records,
        files: Object.fromEntries((current ?? records).map((r) => [r.path, r.sha256])),
    };
}

/** Bounds the SSH connections this provider process holds at once. */
export class Semaphore {
    private active = 0;
    private readonly waiting: (() => void)[] = [];

    constructor(private readonly limit: number) {}

    async use<T>(f: () => Promise<T>): Promise<T> {
        if (this.active >= this.limit) {
            await new Promise<void>((resolve) => this.waiting.push(resolve));
        } else {
            this.active++;
        }
        try {
            return await f();
        } finally {
            const next = this.waiting.shift();
            if (next) {
                next(); // the slot passes on
            } else {
                this.active--;
            }
        }
    }
}

/** Connections at once: PULUMI_AIRGAP_SSH_CONNECTIONS, default 16. */
export function maxConnections(): number {
    const n = Number(process.env.PULUMI_AIRGAP_SSH_CONNECTIONS);
    return Number.isInteger(n) && n > 0 ? n : 16;
}

const connections = new Semaphore(maxConnections());

/** Runs `f` over a transport to `spec`'s host, opened for it and closed after it. */
async function withHost<T>(spec: HostMirrorSpec, f: (t: HostTransport) => Promise<T>): Promise<T> {
    const run = async () => {
        const t = await openTransport(spec.target);
        try {
            return await f(t);
        } finally {
            await t.close().catch(() => undefined);
        }
    };
    return spec.target?.ssh ? connections.use(run) : run();
}

/** The files to write: derived files (e.g. a merged daemon.json) rendered from their text on the host. */
async function renderFor(t: HostTransport, spec: HostMirrorSpec): Promise<HostFile[]> {
    const current: Record<string, string | undefined> = {};
    for (const dir of listDirs(spec)) {
        const names = await t.list(dir);
        current[`${dir}/`] = names === undefined ? undefined : names.map((n) => `${n}\n`).join("");
    }
    for (const p of derivedPaths(spec, current)) {
        current[p] = (await t.readFile(p))?.toString("utf8");
    }
    return renderHostFiles(spec, current);
}

/** Paths whose content depends on the host: compared by inputs only in `diff`, which connects to nothing. */
function derivedOf(spec: HostMirrorSpec): Set<string> {
    return new Set(derivedPaths(spec));
}

export const operations: Operations<HostMirrorInputs, HostMirrorState> = {
    async check(olds, news) {
        const checked = await checkWith((spec: HostMirrorInputs) => validateHostMirrorSpec(resolved(spec)))(olds, news);
        return containsUnknown(news) ? checked : { ...checked, inputs: normalized(news) };
    },

    async diff(_id, olds, news): Promise<DiffResult> {
        if (containsUnknown(news)) {
            const replaces =
                containsUnknown(news.target) || placeOfTarget(olds) !== placeOfTarget(news) ? ["target"] : [];
            return { changes: true, replaces };
        }
        // States written before check normalised the target compare by the place they stand for.
        const replaces = placeOfTarget(olds) !== placeOfTarget(news) ? ["target"] : [];
        const inputsChanged = canonicalJson(inputsOf(normalized(olds))) !== canonicalJson(inputsOf(normalized(news)));
        const wanted = new Map(renderHostFiles(news).map((f) => [f.path, sha256(f.content)]));
        const derived = derivedOf(news);
        const written = new Map((olds.records ?? []).map((r) => [r.path, r.sha256]));
        const found = olds.files ?? {};
        let filesChanged = false;
        for (const p of new Set([...wanted.keys(), ...Object.keys(found)])) {
            if (wanted.has(p) && !derived.has(p)) {
                filesChanged ||= wanted.get(p) !== found[p];
            } else if (p in found) {
                // Rendered from the host's text: drift is what refresh found against what was written.
                filesChanged ||= written.has(p) && written.get(p) !== found[p];
            } else {
                filesChanged = true;
            }
        }
        return { changes: inputsChanged || filesChanged || replaces.length > 0, replaces };
    },

    async create(inputs) {
        const spec = resolved(inputs);
        await assertValidHostMirrorSpec(spec);
        const { records } = await withHost(spec, async (t) =>
            applyHost(t, spec.name, await renderFor(t, spec), [], { reload: spec.reload }),
        );
        const id = spec.target.ssh ? `${placeOfTarget(spec)}#${spec.name}` : `${rootOf(spec)}#${spec.name}`;
        return { id, outs: stateOf(inputs, records) };
    },

    async read(id, props) {
        const records = props.records ?? [];
        const current = await withHost(resolved(props), (t) => readFiles(t, records));
        return { id, props: stateOf(props, records, current) };
    },

    async update(_id, olds, news) {
        const spec = resolved(news);
        await assertValidHostMirrorSpec(spec);
        const { records } = await withHost(spec, async (t) =>
            applyHost(t, spec.name, await renderFor(t, spec), olds.records ?? [], { reload: spec.reload }),
        );
        return { outs: stateOf(news, records) };
    },

    async delete(_id, props) {
        await withHost(resolved(props), (t) => removeFiles(t, props.records ?? [], props.name));
    },
};
