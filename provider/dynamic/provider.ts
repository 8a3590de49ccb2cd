/**
 * The Pulumi dynamic-provider objects. Pulumi serializes them into state (docs/ARCHITECTURE.md,
 * decision 1): they must stay tiny and capture nothing but the name of the engine module, which
 * they load at call time through the package's own name so the provider process finds it in
 * node_modules.
 */
import type * as pulumi from "@pulumi/pulumi";

/**
 * A provider whose every operation forwards to `require(engineModule).operations`.
 * `engineModule` MUST be a package path such as "pulumi-airgap/provider/host/operations".
 */
export function forwardingProvider(engineModule: string): pulumi.dynamic.ResourceProvider {
    // Each method re-requires by name: closures may hold only this string.
    return {
        async check(olds, news) {
            return require(engineModule).operations.check(olds, news);
        },
        async diff(id, olds, news) {
            return require(engineModule).operations.diff(id, olds, news);
        },
        async create(inputs) {
            return require(engineModule).operations.create(inputs);
        },
        async read(id, props) {
            return require(engineModule).operations.read(id, props);
        },
        async update(id, olds, news) {
            return require(engineModule).operations.update(id, olds, news);
        },
        async delete(id, props) {
            return require(engineModule).operations.delete(id, props);
        },
    };
}
