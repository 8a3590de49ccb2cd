/**
 * MirrorVM's provider operations. `read` and `delete` also run the code stored in the state of
 * older versions: they rely only on `output`, `path` and `sha256`.
 */
import { checkWith, containsUnknown, diffInputs, type Operations } from "../dynamic/contract";
import { problemOf } from "../errors";
import {
    buildMirrorVm,
    describeContent,
    type MirrorVmSpec,
    type MirrorVmState,
    placeOfOutput,
    readMirrorVm,
    removeMirrorVm,
    validateMirrorVmSpec,
} from "./mirror";

/** What the image is made from: a change to any of them rebuilds it. `maxSize` only limits. */
const buildKeys = [
    "output",
    "content",
    "baseImage",
    "baseImageSha256",
    "services",
    "network",
    "sshAuthorizedKeys",
    "hostname",
    "address",
    "compress",
] as const;

export const operations: Operations<MirrorVmSpec, MirrorVmState> = {
    /** The inputs' problems; then the content's digests, so that preview shows which part changed. */
    async check(olds, news) {
        const result = await checkWith(validateMirrorVmSpec)(olds, news);
        if (!containsUnknown(news) && result.failures.length === 0) {
            try {
                result.inputs = { ...news, output: placeOfOutput(news.output), ...(await describeContent(news)) };
            } catch (err) {
                const argument = (err as { argument?: string }).argument ?? "apt";
                result.failures.push({ property: argument, reason: problemOf(err, argument) });
            }
        }
        return result;
    },

    async diff(_id, olds, news) {
        const replaces =
            containsUnknown(news.output) || placeOfOutput(olds.output) !== placeOfOutput(news.output) ? ["output"] : [];
        return diffInputs(olds, news, buildKeys, replaces);
    },

    async create(inputs) {
        const state = await buildMirrorVm(inputs);
        return { id: state.path, outs: state };
    },

    async read(id, props) {
        return { id, props: await readMirrorVm(props) };
    },

    async update(_id, olds, news) {
        const owned = placeOfOutput(olds.path ?? olds.output) === placeOfOutput(news.output);
        return { outs: await buildMirrorVm(news, { owned }) };
    },

    async delete(_id, props) {
        await removeMirrorVm(props);
    },
};
