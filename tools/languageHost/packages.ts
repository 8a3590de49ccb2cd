/**
 * What a Node.js program needs from Pulumi, read from its `node_modules`: the resource plugins its
 * packages declare (`"pulumi": { "resource": true }` in a package.json), and its npm dependencies.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** A resource plugin a package declares, as the engine's PackageDependency carries it. */
export interface PluginPackage {
    name: string;
    /** Semantic version with a leading "v". */
    version: string;
    /** Where the plugin can be downloaded from; "" for the default location. */
    server: string;
    parameterization?: { name: string; version: string; value: Buffer };
}

interface PackageJson {
    name?: string;
    version?: string;
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
    pulumi?: {
        resource?: boolean;
        name?: string;
        version?: string;
        server?: string;
        parameterization?: { name?: string; version?: string; value?: string };
    };
}

function readPackageJson(file: string): PackageJson {
    return JSON.parse(fs.readFileSync(file, "utf8")) as PackageJson;
}

/**
 * The plugin a package.json declares, or undefined. The plugin's name is `pulumi.name`, else the
 * package name without an `@pulumi/` scope (other scopes lose only the "@"); its version is
 * `pulumi.version`, else the package version.
 */
export function pluginOf(pkg: PackageJson, file = "package.json"): PluginPackage | undefined {
    const p = pkg.pulumi;
    if (!p?.resource) {
        return undefined;
    }
    let name = p.name ?? pkg.name;
    if (!name) {
        throw new Error(`${file}: a package with "pulumi.resource" needs a "name"`);
    }
    if (!p.name) {
        name = name.startsWith("@pulumi/") ? name.slice("@pulumi/".length) : name.replace(/^@/, "");
    }
    const version = p.version ?? pkg.version;
    if (!version) {
        throw new Error(`${file}: a package with "pulumi.resource" needs a "version"`);
    }
    const plugin: PluginPackage = {
        name,
        version: version.startsWith("v") ? version : `v${version}`,
        server: p.server ?? "",
    };
    if (p.parameterization) {
        const { name: pname, version: pversion, value } = p.parameterization;
        if (!pname || !pversion) {
            throw new Error(`${file}: "pulumi.parameterization" needs a "name" and a "version"`);
        }
        plugin.parameterization = { name: pname, version: pversion, value: Buffer.from(value ?? "", "base64") };
    }
    return plugin;
}

/**
 * Every plugin declared by a package under `programDir`'s node_modules, at any depth. Symbolic
 * links are followed once (npm workspaces and `npm link` make cycles). Unreadable entries are
 * collected in `problems` rather than failing the walk, as one broken package must not stop a
 * deployment.
 */
export function requiredPackages(programDir: string): { packages: PluginPackage[]; problems: string[] } {
    const packages: PluginPackage[] = [];
    const problems: string[] = [];
    const seen = new Set<string>();
    const walk = (dir: string, inNodeModules: boolean) => {
        let real: string;
        try {
            real = fs.realpathSync(dir);
        } catch (err) {
            problems.push(`${dir}: ${(err as Error).message}`);
            return;
        }
        if (seen.has(real)) {
            return;
        }
        seen.add(real);
        let entries: fs.Dirent[];
        try {
            entries = fs.readdirSync(dir, { withFileTypes: true });
        } catch (err) {
            problems.push(`${dir}: ${(err as Error).message}`);
            return;
        }
        for (const e of entries) {
            const p = path.join(dir, e.name);
            let isDir = e.isDirectory();
            if (e.isSymbolicLink()) {
                try {
                    isDir = fs.statSync(p).isDirectory();
                } catch (err) {
                    problems.push(`${p}: ${(err as Error).message}`);
                    continue;
                }
            }
            if (isDir) {
                // A nested policy pack's plugins are not the program's.
                if (fs.existsSync(path.join(p, "PulumiPolicy.yaml"))) {
                    continue;
                }
                walk(p, inNodeModules || path.basename(dir) === "node_modules");
            } else if (inNodeModules && e.name === "package.json") {
                try {
                    const plugin = pluginOf(readPackageJson(p), p);
                    if (plugin) {
                        packages.push(plugin);
                    }
                } catch (err) {
                    problems.push(`${p}: ${(err as Error).message}`);
                }
            }
        }
    };
    walk(programDir, false);
    return { packages, problems };
}

/**
 * The program's npm dependencies with their installed versions: those its package.json names
 * (dependencies and devDependencies), or with `transitive`, every package under node_modules.
 */
export function programDependencies(programDir: string, transitive: boolean): { name: string; version: string }[] {
    const modules = path.join(programDir, "node_modules");
    const installed = (name: string): string | undefined => {
        try {
            return readPackageJson(path.join(modules, name, "package.json")).version;
        } catch {
            return undefined; // not installed, or unreadable: it has no version to report
        }
    };
    const out = new Map<string, string>();
    if (!transitive) {
        const own = path.join(programDir, "package.json");
        if (!fs.existsSync(own)) {
            return [];
        }
        const pkg = readPackageJson(own);
        for (const [name, wanted] of Object.entries({ ...pkg.devDependencies, ...pkg.dependencies })) {
            out.set(name, installed(name) ?? wanted);
        }
    } else if (fs.existsSync(modules)) {
        for (const e of fs.readdirSync(modules)) {
            if (e.startsWith(".")) {
                continue;
            }
            const names = e.startsWith("@") ? fs.readdirSync(path.join(modules, e)).map((n) => `${e}/${n}`) : [e];
            for (const name of names) {
                const version = installed(name);
                if (version) {
                    out.set(name, version);
                }
            }
        }
    }
    return [...out.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, version]) => ({ name, version }));
}
