/**
 * Pulumi's mocks for component tests: every resource the program registers is recorded with
 * its type, name, inputs, parent and the URNs it depends on, as the engine would receive them.
 */
import * as pulumi from "@pulumi/pulumi";
import { getMonitor } from "@pulumi/pulumi/runtime/settings";

/** What the mock monitor reads of a RegisterResourceRequest. */
interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getDependenciesList(): string[];
}

// biome-ignore lint/suspicious/noExplicitAny: recorded resource inputs and parsed YAML are untyped data, read by property.
export type Loose = any;

export interface Registered {
    type: string;
    name: string;
    urn: string;
    inputs: Record<string, Loose>;
    parent: string;
    dependencies: string[];
}

export interface Recorder {
    /** Every registration so far, in order. */
    all: Registered[];
    /** The registration of `name` (fails the test when there is none). */
    get(name: string): Registered;
    byType(type: string): Registered[];
    /** Resolves once each of `resources` is registered (its URN known). */
    settle(resources: pulumi.Resource[]): Promise<void>;
}

/** Installs the mocks (an update, not a preview) and returns the recorder. */
export async function installMocks(
    outputs: (type: string, inputs: Record<string, Loose>) => Record<string, Loose> = () => ({}),
): Promise<Recorder> {
    const all: Registered[] = [];
    const pending = new Map<string, Partial<Registered>>();
    await pulumi.runtime.setMocks(
        {
            newResource: (args) => {
                const got = pending.get(`${args.type}::${args.name}`) ?? {};
                all.push({
                    type: args.type,
                    name: args.name,
                    urn: got.urn ?? "",
                    inputs: args.inputs,
                    parent: got.parent ?? "",
                    dependencies: got.dependencies ?? [],
                });
                return { id: `${args.name}-id`, state: { ...args.inputs, ...outputs(args.type, args.inputs) } };
            },
            call: (args) => args.inputs,
        },
        "project",
        "stack",
        false,
    );
    const monitor = getMonitor() as unknown as { registerResource: (req: RegisterRequest, cb: unknown) => unknown };
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
        pending.set(`${req.getType()}::${req.getName()}`, {
            parent: req.getParent(),
            dependencies: req.getDependenciesList(),
            urn: `urn:pulumi:stack::project::${req.getType()}::${req.getName()}`,
        });
        return original(req, cb);
    };
    return {
        all,
        get(name) {
            const found = all.filter((r) => r.name === name);
            if (found.length !== 1) {
                throw new Error(
                    `${found.length} resources named ${name}; registered: ${all.map((r) => r.name).join(", ")}`,
                );
            }
            return found[0]!;
        },
        byType: (type) => all.filter((r) => r.type === type),
        settle: (resources) => {
            let timer: NodeJS.Timeout | undefined;
            // A registration that fails (a claim refused inside an apply) never gives its URN.
            const late = new Promise<never>((_, reject) => {
                timer = setTimeout(
                    () => reject(new Error("resources not registered within 20 s (an input failed?)")),
                    20_000,
                );
            });
            const all = Promise.all(resources.map((r) => new Promise<string>((resolve) => r.urn.apply(resolve))));
            return Promise.race([all, late]).then(
                () => clearTimeout(timer),
                (err) => {
                    clearTimeout(timer);
                    throw err;
                },
            );
        },
    };
}

/** The URN a child's registration names its parent by, for `parent` checks. */
export function urnOf(resource: pulumi.Resource): Promise<string> {
    return new Promise((resolve) => resource.urn.apply(resolve));
}
