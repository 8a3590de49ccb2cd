import { mkdir, writeFile } from "node:fs/promises";
import { type IncomingMessage, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { makeTlsMaterial, type TlsMaterial } from "../fixtures/tls";
import { makeTempDir, removeTempDir } from "../tmp";
import { type ManagedProcess, run, startProcess, startWithFreePort, waitUntil } from "./process";
import type { TokenServer } from "./token";

/**
 * Debian's `docker-registry` (the distribution registry) started for a test: filesystem
 * storage in a temp dir, listening on 127.0.0.1, deletes enabled, optionally with htpasswd
 * basic auth, bearer-token auth and TLS.
 */

export const DOCKER_REGISTRY_BIN = "/usr/bin/docker-registry";

export interface RegistryOptions {
    /** Basic auth through an htpasswd file (bcrypt, made with `htpasswd -B`). */
    auth?: { username: string; password: string };
    /** Bearer-token auth against this token server (see `startTokenServer`). Excludes `auth`. */
    token?: TokenServer;
    /** Serve HTTPS: true makes a fresh CA and server certificate; or pass certificates to use. */
    tls?: boolean | TlsMaterial;
    /** Milliseconds to wait for GET /v2/ to answer. Defaults to 20 s. */
    readyTimeoutMs?: number;
}

export interface RegistryServer {
    /** "127.0.0.1:PORT", as used in image references. */
    readonly host: string;
    readonly port: number;
    /** "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT". */
    readonly url: string;
    /** The storage root (filesystem driver). */
    readonly dataDir: string;
    /** The CA certificate that signed the server certificate, when TLS is on. */
    readonly caCertPem?: string;
    readonly caCertPath?: string;
    /** A directory with `ca.crt`, for `skopeo --cert-dir`, when TLS is on. */
    readonly certDir?: string;
    readonly username?: string;
    readonly password?: string;
    /** The registry's own output so far. */
    log(): string;
    stop(): Promise<void>;
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RegistryServer> {
    if (options.auth !== undefined && options.token !== undefined) {
        throw new Error("startRegistry: give either auth (htpasswd) or token, not both");
    }
    const dir = await makeTempDir("registry");
    let tls: TlsMaterial | undefined;
    let proc: ManagedProcess | undefined;
    try {
        const dataDir = join(dir, "data");
        await mkdir(dataDir);
        if (options.tls === true) {
            // Inside the registry's dir, so stop() removes it too.
            tls = await makeTlsMaterial({ dir: join(dir, "tls") });
        } else if (typeof options.tls === "object") {
            tls = options.tls;
        }

        let auth: Record<string, unknown> | undefined;
        if (options.auth !== undefined) {
            const htpasswdPath = join(dir, "htpasswd");
            await writeHtpasswd(htpasswdPath, options.auth.username, options.auth.password);
            auth = { htpasswd: { realm: "pulumi-airgap test registry", path: htpasswdPath } };
        } else if (options.token !== undefined) {
            auth = {
                token: {
                    realm: options.token.realm,
                    service: options.token.service,
                    issuer: options.token.issuer,
                    rootcertbundle: options.token.signingCertPath,
                },
            };
        }

        const scheme = tls === undefined ? "http" : "https";
        const started = await startWithFreePort(async (port) => {
            // YAML is a superset of JSON, so the configuration is written as JSON.
            const config = {
                version: "0.1",
                log: { level: "info", accesslog: { disabled: false } },
                storage: {
                    filesystem: { rootdirectory: dataDir },
                    delete: { enabled: true },
                    maintenance: { uploadpurging: { enabled: false } },
                },
                http: {
                    addr: `127.0.0.1:${port}`,
                    secret: "pulumi-airgap-test-secret",
                    ...(tls === undefined ? {} : { tls: { certificate: tls.certPath, key: tls.keyPath } }),
                },
                ...(auth === undefined ? {} : { auth }),
            };
            const configPath = join(dir, "config.yml");
            await writeFile(configPath, `${JSON.stringify(config, null, 2)}\n`);
            const p = startProcess(DOCKER_REGISTRY_BIN, ["serve", configPath], {
                name: "docker-registry",
                cwd: dir,
                env: cleanEnv(),
            });
            proc = p;
            const url = `${scheme}://127.0.0.1:${port}`;
            try {
                await waitUntil(
                    async () => {
                        // Another process may hold the port (two registries started at once can be
                        // handed the same free port): only our process's own "listening" line
                        // proves the answer below comes from it. One that lost the race exits
                        // with "address already in use", and startWithFreePort tries another port.
                        if (!p.log().includes(`listening on 127.0.0.1:${port}`)) {
                            return false;
                        }
                        const status = await getStatus(`${url}/v2/`, tls?.caCertPem);
                        return status === 200 || status === 401;
                    },
                    {
                        what: `docker-registry to answer GET ${url}/v2/`,
                        process: p,
                        timeoutMs: options.readyTimeoutMs ?? 20_000,
                    },
                );
            } catch (e) {
                await p.stop();
                proc = undefined;
                throw e;
            }
            return { port, url, proc: p };
        });

        const registry: RegistryServer = {
            host: `127.0.0.1:${started.port}`,
            port: started.port,
            url: started.url,
            dataDir,
            caCertPem: tls?.caCertPem,
            caCertPath: tls?.caCertPath,
            certDir: tls?.certDir,
            username: options.auth?.username,
            password: options.auth?.password,
            log: () => started.proc.log(),
            async stop() {
                await started.proc.stop();
                await removeTempDir(dir);
            },
        };
        return registry;
    } catch (e) {
        await proc?.stop();
        await removeTempDir(dir);
        throw e;
    }
}

/** The environment without REGISTRY_* variables, which would override the config file. */
function cleanEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("REGISTRY_")) env[k] = v;
    return env;
}

/** distribution only accepts bcrypt entries in htpasswd files. */
export async function writeHtpasswd(path: string, username: string, password: string): Promise<void> {
    let line: string;
    try {
        // -i reads the password from stdin, so it does not show in the process list.
        const result = await run("htpasswd", ["-n", "-B", "-i", username], { input: `${password}\n` });
        line = result.stdout.trim();
    } catch (cause) {
        throw new Error("making a bcrypt htpasswd entry (is Debian package apache2-utils installed?)", { cause });
    }
    await writeFile(path, `${line}\n`);
}

/** The status code of a GET, or throws when the server does not answer (yet). */
export function getStatus(url: string, caPem?: string): Promise<number> {
    return new Promise((resolve, reject) => {
        const done = (res: IncomingMessage) => {
            res.resume();
            resolve(res.statusCode ?? 0);
        };
        const req = url.startsWith("https:")
            ? httpsRequest(url, { method: "GET", ca: caPem, timeout: 2000 }, done)
            : httpRequest(url, { method: "GET", timeout: 2000 }, done);
        req.on("timeout", () => req.destroy(new Error(`GET ${url} timed out`)));
        req.on("error", reject);
        req.end();
    });
}
