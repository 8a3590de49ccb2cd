/**
 * HostMirrorConfig's provider operations, called by the dynamic provider at run time.
 * `read` and `delete` run the code stored in state by older versions too: they accept records
 * without the fields added since (see FileRecord.dirs).
 */
import * as path from "node:path";
import { checkWith, containsUnknown, type DiffResult, type Operations, pickDefined } from "../dynamic/contract";
import { canonicalJson } from "../store/canonical";
import { sha256 } from "../store/atomic";
import { applyFiles, placeOfTarget, readFiles, removeFiles, rootOf } from "./apply";
import { renderHostFiles } from "./render";
import type { FileRecord, HostMirrorSpec } from "./types";
import { assertValidHostMirrorSpec, validateHostMirrorSpec } from "./validate";

export interface HostMirrorState extends HostMirrorSpec {
    /** Path (relative to root) → SHA256 of the file as last read; "" when it is missing. */
    files: Record<string, string>;
    records: FileRecord[];
}

const inputKeys = ["name", "target", "registries", "caCertificates", "apt"] as const;

/** The inputs with the target spelled as `placeOfTarget` does: what check hands on and the state keeps. */
function normalized(spec: HostMirrorSpec): HostMirrorSpec {
    return spec.target?.local && typeof rootOf(spec) === "string" && path.isAbsolute(rootOf(spec))
        ? { ...spec, target: { ...spec.target, local: { ...spec.target.local, root: placeOfTarget(spec) } } }
        : spec;
}

function stateOf(spec: HostMirrorSpec, records: FileRecord[]): HostMirrorState {
    return {
        ...pickDefined(spec, inputKeys),
        records,
        files: Object.fromEntries(records.map((r) => [r.path, r.sha256])),
    };
}

export const operations: Operations<HostMirrorSpec, HostMirrorState> = {
    async check(olds, news) {
        const checked = await checkWith(validateHostMirrorSpec)(olds, news);
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
        const inputsOf = (spec: HostMirrorSpec) => pickDefined(normalized(spec), inputKeys);
        const inputsChanged = canonicalJson(inputsOf(olds)) !== canonicalJson(inputsOf(news));
        const wanted = Object.fromEntries(renderHostFiles(news).map((f) => [f.path, sha256(f.content)]));
        const filesChanged = canonicalJson(wanted) !== canonicalJson(olds.files ?? {});
        return { changes: inputsChanged || filesChanged || replaces.length > 0, replaces };
    },

    async create(inputs) {
        await assertValidHostMirrorSpec(inputs);
        const records = applyFiles(rootOf(inputs), inputs.name, renderHostFiles(inputs), []);
        return { id: `${rootOf(inputs)}#${inputs.name}`, outs: stateOf(inputs, records) };
    },

    async read(id, props) {
        return { id, props: stateOf(props, readFiles(rootOf(props), props.records ?? [])) };
    },

    async update(_id, olds, news) {
        await assertValidHostMirrorSpec(news);
        const records = applyFiles(rootOf(news), news.name, renderHostFiles(news), olds.records ?? []);
        return { outs: stateOf(news, records) };
    },

    async delete(_id, props) {
        removeFiles(rootOf(props), props.records ?? []);
    },
};
