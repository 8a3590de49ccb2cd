import { createSign, randomBytes, X509Certificate } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { makeSigningCert, type SigningCert } from "../fixtures/tls";
import { makeTempDir, removeTempDir } from "../tmp";

/**
 * A minimal bearer-token server of the kind registries send clients to (the "realm" of
 * `WWW-Authenticate: Bearer realm=...,service=...,scope=...`).
 *
 * `GET /token?service=S&scope=repository:NAME:pull,push` with valid basic credentials returns
 * `{"token": JWT, "access_token": JWT, "expires_in": N, "issued_at": ...}` granting the requested
 * actions. Tokens are RS256 JWTs whose `x5c` header carries the signing certificate, which is
 * what docker-registry checks against its `auth.token.rootcertbundle` (see `signingCertPath`).
 */

export interface TokenServerOptions {
    /** The accepted user name and password. */
    username: string;
    password: string;
    /** The `service` claim / audience. Defaults to "pulumi-airgap-test-registry". */
    service?: string;
    /** The `iss` claim. Defaults to "pulumi-airgap-test-issuer". */
    issuer?: string;
    /** Anonymous requests get a token granting these actions (e.g. ["pull"]); refused (401) when absent. */
    anonymousActions?: string[];
    /** Token lifetime in seconds. Defaults to 300. */
    expiresIn?: number;
}

export interface TokenRequestLogEntry {
    /** The user name sent, or undefined for anonymous requests. */
    username: string | undefined;
    scopes: string[];
    status: number;
}

export interface TokenServer {
    /** The realm URL, `http://127.0.0.1:PORT/token`. */
    readonly realm: string;
    readonly url: string;
    readonly service: string;
    readonly issuer: string;
    /** PEM certificate whose key signs the tokens: docker-registry's `rootcertbundle`. */
    readonly signingCertPath: string;
    readonly requests: readonly TokenRequestLogEntry[];
    /** Signs a token for the given access list directly (for tests that craft requests by hand). */
    issue(subject: string, access: TokenAccess[]): string;
    close(): Promise<void>;
}

export interface TokenAccess {
    type: string;
    name: string;
    actions: string[];
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
    const service = options.service ?? "pulumi-airgap-test-registry";
    const issuer = options.issuer ?? "pulumi-airgap-test-issuer";
    const expiresIn = options.expiresIn ?? 300;
    const dir = await makeTempDir("token");
    let signing: SigningCert;
    try {
        signing = await makeSigningCert(dir);
    } catch (e) {
        await removeTempDir(dir);
        throw e;
    }
    const certDer = new X509Certificate(signing.certPem).raw.toString("base64");
    const requests: TokenRequestLogEntry[] = [];
    const sockets = new Set<Socket>();

    const issue = (subject: string, access: TokenAccess[]): string => {
        const now = Math.floor(Date.now() / 1000);
        const header = { typ: "JWT", alg: "RS256", x5c: [certDer] };
        const claims = {
            iss: issuer,
            sub: subject,
            aud: service,
            exp: now + expiresIn,
            // Leeway for clocks: the registry rejects tokens "not yet valid".
            nbf: now - 60,
            iat: now,
            jti: randomBytes(12).toString("hex"),
            access,
        };
        const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
        const signature = createSign("RSA-SHA256").update(signingInput).sign(signing.keyPem);
        return `${signingInput}.${b64url(signature)}`;
    };

    const server = createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://localhost");
        const scopes = url.searchParams.getAll("scope").flatMap((s) => s.split(" ").filter((x) => x !== ""));
        const reply = (status: number, body: unknown, username: string | undefined): void => {
            requests.push({ username, scopes, status });
            const text = JSON.stringify(body);
            const headers: Record<string, string> = { "content-type": "application/json" };
            if (status === 401) headers["www-authenticate"] = 'Basic realm="pulumi-airgap test token server"';
            res.writeHead(status, headers);
            res.end(text);
        };
        if (url.pathname !== "/token") {
            reply(404, { errors: [{ code: "NOT_FOUND" }] }, undefined);
            return;
        }
        const credentials = parseBasic(req.headers.authorization);
        let actionsFor: (requested: string[]) => string[];
        if (credentials === undefined) {
            if (options.anonymousActions === undefined) {
                reply(401, { errors: [{ code: "UNAUTHORIZED", message: "credentials required" }] }, undefined);
                return;
            }
            const allowed = options.anonymousActions;
            actionsFor = (requested) => requested.filter((a) => allowed.includes(a));
        } else if (credentials.username === options.username && credentials.password === options.password) {
            actionsFor = (requested) => requested;
        } else {
            reply(401, { errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] }, credentials.username);
            return;
        }
        const access = scopes.map(parseScope).filter((a): a is TokenAccess => a !== undefined);
        const granted = access.map((a) => ({ ...a, actions: actionsFor(a.actions) }));
        const token = issue(credentials?.username ?? "", granted);
        reply(
            200,
            { token, access_token: token, expires_in: expiresIn, issued_at: new Date().toISOString() },
            credentials?.username,
        );
    });
    server.on("connection", (socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}`;
    return {
        realm: `${url}/token`,
        url,
        service,
        issuer,
        signingCertPath: signing.certPath,
        requests,
        issue,
        async close() {
            await new Promise<void>((resolve) => {
                for (const socket of sockets) socket.destroy();
                server.close(() => resolve());
            });
            await removeTempDir(dir);
        },
    };
}

function b64url(data: string | Buffer): string {
    return Buffer.from(data).toString("base64url");
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
    const m = /^Basic\s+(\S+)$/i.exec(header ?? "");
    if (m === null) return undefined;
    const text = Buffer.from(m[1]!, "base64").toString("utf8");
    const colon = text.indexOf(":");
    if (colon < 0) return undefined;
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** "repository:library/foo:pull,push" → { type, name, actions }; names may contain ":" only before a port. */
function parseScope(scope: string): TokenAccess | undefined {
    const first = scope.indexOf(":");
    const last = scope.lastIndexOf(":");
    if (first < 0 || last <= first) return undefined;
    return {
        type: scope.slice(0, first),
        name: scope.slice(first + 1, last),
        actions: scope
            .slice(last + 1)
            .split(",")
            .filter((a) => a !== ""),
    };
}
