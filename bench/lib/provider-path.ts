/**
 * The one way the benchmarks run our side: the dynamic provider the SDK registers
 * (`forwardingProvider` of the engine module the SDK names), called as the Pulumi engine calls
 * it: `check`, then `create` for a resource without state, `update` with the previous outputs
 * otherwise. So a benchmark measures exactly what `pulumi up` runs (the same functions, the same
 * options), never an engine call with options the provider does not pass.
 */
import type * as pulumi from "@pulumi/pulumi";
import { forwardingProvider } from "../../provider/dynamic/provider";

/** The engine modules the SDK's resources forward to (sdk/aptMirror.ts, sdk/imageMirror.ts). */
export const APT_ENGINE = "pulumi-airgap/provider/apt/operations";
export const IMAGE_ENGINE = "pulumi-airgap/provider/oci/operations";

export interface Deployed<S> {
    readonly id: string;
    readonly outs: S;
}

/**
 * One `pulumi up` of one resource through its dynamic provider: `check(olds, news)`, then `create`
 * (no `previous`) or `update(id, olds, checked)`. Fails with the provider's check failures.
 */
export async function providerUp<I extends object, S extends object>(
    engine: typeof APT_ENGINE | typeof IMAGE_ENGINE,
    inputs: I,
    previous?: Deployed<S>,
): Promise<Deployed<S>> {
    const provider: pulumi.dynamic.ResourceProvider = forwardingProvider(engine);
    const olds = (previous?.outs ?? {}) as Record<string, unknown>;
    const checked = await provider.check!(olds, inputs);
    if (checked.failures !== undefined && checked.failures.length > 0) {
        throw new Error(`check failed: ${checked.failures.map((f) => `${f.property}: ${f.reason}`).join("; ")}`);
    }
    const news = (checked.inputs ?? inputs) as Record<string, unknown>;
    if (previous === undefined) {
        const created = await provider.create(news);
        return { id: created.id, outs: created.outs as S };
    }
    const updated = await provider.update!(previous.id, olds, news);
    return { id: previous.id, outs: { ...(updated.outs ?? {}) } as S };
}
