/**
 * A client for the HTTP API of one registry (the OCI distribution specification, `/v2/`), over
 * undici.
 *
 * - The first request pings `GET /v2/`, which settles the scheme (https; http only when the
 *   registry is declared insecure) and the authentication scheme the registry asks for.
 * - Authentication: anonymous, Basic (credentials sent with every request once the registry asked
 *   for them), and Bearer: on a 401 with `WWW-Authenticate: Bearer realm=...`, a token for the
 *   request's scopes (`repository:<name>:pull` or `pull,push`) is fetched from the realm, cached
 *   per scope set until it expires, and the request is sent again, once.
 * - Retries with exponential backoff (4 attempts by default) on 5xx answers, 429, and connection
 *   failures (reset, refused, timeouts); never on other 4xx answers, and never when the request
 *   body cannot be sent again.
 * - GET and HEAD follow redirects (registries send blob downloads to their storage); the
 *   Authorization header is only sent back to the registry's own origin.
 *
 * Error messages name the registry and what was asked for, never credentials or tokens.
 *
 * One file for one connection: the scheme, the authentication challenge, the token cache and the
 * retries are one state machine over private fields (its pure helpers are in registry_http.ts).
 */

import { rootCertificates } from "node:tls";
import { Agent, type Dispatcher, request } from "undici";
import { AirgapError, authError, invalidArgument, isAirgapError } from "../errors";
import {
    type AuthChallenge,
    basicAuthorization,
    bearerChallenge,
    type DockerConfig,
    findCredentials,
    parseWwwAuthenticate,
    type RegistryCredentials,
} from "./auth";
import { contentLengthOf, readJsonCapped } from "../http/body";
import { parseRetryAfter, type RetryOptions, retryDelay } from "../http/retry";
import { DOCKER_HUB_DOMAIN } from "./reference";
import {
    describeErrorBody,
    isRetriableNetworkError,
    isRetriableStatus,
    messageOf,
    readErrorText,
    repositoryScope,
    sleep,
    TLS_ERROR_RE,
} from "./registry_http";

export * from "./registry_http";

/** Where Docker Hub's API is served: `docker.io` names the registry, not its API host. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

/** How to reach and authenticate to a registry. Plain data apart from `dispatcher`. */
export interface RegistryOptions {
    /**
     * The undici dispatcher for every request (registry and token realm), e.g. a `ProxyAgent`.
     * It is used as given, so `caPem` and `insecure: true | "skip-verify"` cannot be combined
     * with it (configure TLS on the dispatcher instead). Defaults to an `Agent` owned by the
     * client and closed with it.
     */
    readonly dispatcher?: Dispatcher;
    /** Credentials for this registry. Take precedence over `dockerConfig`. */
    readonly credentials?: RegistryCredentials;
    /** A parsed Docker config.json / auth.json / pull secret; its entry for the repository is used. */
    readonly dockerConfig?: DockerConfig;
    /** CA certificates (PEM) trusted in addition to the system ones, e.g. a private registry's CA. */
    readonly caPem?: string;
    /**
     * `"http"`: the registry speaks plain HTTP. `"skip-verify"`: HTTPS without verifying the
     * certificate. `true`: HTTPS without verification, falling back to plain HTTP when the registry
     * does not speak TLS (skopeo's `--tls-verify=false`). Defaults to false: HTTPS, verified.
     */
    readonly insecure?: boolean | "http" | "skip-verify";
    readonly retry?: RetryOptions;
    /** Milliseconds to wait for response headers and between body chunks. Defaults to 120 s. */
    readonly timeoutMs?: number;
    /** Defaults to "pulumi-airgap". */
    readonly userAgent?: string;
}

export type HttpMethod = "GET" | "HEAD" | "PUT" | "POST" | "PATCH" | "DELETE";

export interface RegistryRequest {
    readonly method: HttpMethod;
    /** A path with query below the registry (`/v2/...`), or an absolute URL (an upload location). */
    readonly url: string;
    /** The repository path (e.g. "library/nginx") the request is about; decides scope and credentials. */
    readonly repository: string;
    /** Actions on `repository` the request needs. */
    readonly actions: "pull" | "pull,push" | "delete";
    /** Further scopes, e.g. `repository:other/repo:pull` for a cross-repository mount. */
    readonly extraScopes?: readonly string[];
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: Buffer;
    /** What is asked for, for messages: e.g. "manifest 127.0.0.1:5000/app:v1". */
    readonly what: string;
    /** False disables retries (the caller recovers itself, e.g. chunked uploads). Defaults to true. */
    readonly retry?: boolean;
}

export interface RegistryResponse {
    readonly status: number;
    readonly headers: Readonly<Record<string, string | string[] | undefined>>;
    /** The body; the caller MUST consume or dump it. */
    readonly body: Dispatcher.ResponseData["body"];
    /** The URL that answered (after redirects). */
    readonly url: URL;
}

type Challenge =
    | { readonly scheme: "none" }
    | { readonly scheme: "basic" }
    | { readonly scheme: "bearer"; readonly realm: string; readonly service?: string };

interface CachedToken {
    readonly token: string;
    /** Milliseconds since the epoch. */
    readonly expiresAt: number;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** Tokens are renewed this long before they expire. */
const TOKEN_EXPIRY_MARGIN_MS = 10_000;
/** The distribution token spec's default lifetime when `expires_in` is absent. */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** A token answer larger than this is refused (tokens are a few KiB). */
export const MAX_TOKEN_RESPONSE_SIZE = 1024 * 1024;

/** A client for one registry host. Safe for concurrent requests; `close` once when done. */
export class RegistryClient {
    /** The registry as named in references, e.g. "127.0.0.1:5000" or "docker.io". */
    public readonly domain: string;
    private readonly options: RegistryOptions;
    private readonly dispatcher: Dispatcher;
    private readonly ownsDispatcher: boolean;
    private base: URL | undefined;
    private challenge: Challenge | undefined;
    private pinging: Promise<void> | undefined;
    private readonly tokens = new Map<string, CachedToken>();
    private readonly tokenRequests = new Map<string, Promise<string>>();
    private closed = false;
    /** Holders of this client: `close` releases one, the last one releases the connections. */
    private holders = 1;

    constructor(domain: string, options: RegistryOptions = {}) {
        this.domain = domain;
        this.options = options;
        const insecure = options.insecure ?? false;
        if (![false, true, "http", "skip-verify"].includes(insecure)) {
            throw invalidArgument("insecure", `"${String(insecure)}" is not true, false, "http" or "skip-verify"`);
        }
        const attempts = options.retry?.attempts;
        if (attempts !== undefined && !(Number.isSafeInteger(attempts) && attempts >= 1)) {
            throw invalidArgument("retry.attempts", `must be an integer of at least 1, got ${attempts}`);
        }
        const skipVerify = insecure === true || insecure === "skip-verify";
        if (options.dispatcher !== undefined) {
            if (options.caPem !== undefined || skipVerify) {
                throw invalidArgument(
                    "dispatcher",
                    `a dispatcher is used as given, so it cannot be combined with caPem or insecure: ${JSON.stringify(insecure)}; ` +
                        "configure TLS on the dispatcher instead",
                );
            }
            this.dispatcher = options.dispatcher;
            this.ownsDispatcher = false;
        } else {
            const connect: { ca?: string[]; rejectUnauthorized?: boolean } = {};
            if (options.caPem !== undefined) {
                connect.ca = [...rootCertificates, options.caPem];
            }
            if (skipVerify) {
                connect.rejectUnauthorized = false;
            }
            this.dispatcher = new Agent({ connect });
            this.ownsDispatcher = true;
        }
    }

    /** The host the API is served from. */
    get apiHost(): string {
        return this.domain === DOCKER_HUB_DOMAIN ? DOCKER_HUB_API_HOST : this.domain;
    }

    /** The credentials for `repository` of this registry, if any. */
    credentialsFor(repository: string): RegistryCredentials | undefined {
        if (this.options.credentials !== undefined) {
            return this.options.credentials;
        }
        if (this.options.dockerConfig === undefined) {
            return undefined;
        }
        return findCredentials(this.options.dockerConfig, `${this.domain}/${repository}`);
    }

    /**
     * `GET /v2/`: settles the scheme and what authentication the registry asks for. Runs once;
     * every request waits for it. ERR_NETWORK when the registry cannot be reached, with the
     * TLS problem named when that is the cause.
     */
    ping(): Promise<void> {
        this.pinging ??= this.doPing().catch((err: unknown) => {
            this.pinging = undefined;
            throw err;
        });
        return this.pinging;
    }

    private async doPing(): Promise<void> {
        const insecure = this.options.insecure ?? false;
        const schemes = insecure === "http" ? ["http"] : insecure === true ? ["https", "http"] : ["https"];
        let lastError: unknown;
        for (const scheme of schemes) {
            const base = new URL(`${scheme}://${this.apiHost}/`);
            let res: Dispatcher.ResponseData;
            try {
                res = await this.withRetries(`ping ${this.domain}`, new URL("/v2/", base), true, (url) =>
                    this.raw("GET", url, {}, undefined),
                );
            } catch (err) {
                lastError = err;
                continue;
            }
            await res.body.dump();
            if (res.statusCode === 200) {
                this.challenge = { scheme: "none" };
            } else if (res.statusCode === 401) {
                this.challenge = this.challengeOf(res.headers["www-authenticate"]);
            } else if (res.statusCode === 404) {
                throw new AirgapError(
                    "ERR_NOT_FOUND",
                    `${this.domain} does not serve the registry API (GET ${base.origin}/v2/ answered 404)`,
                );
            } else {
                throw new AirgapError(
                    "ERR_NETWORK",
                    `registry ${this.domain}: GET ${base.origin}/v2/ answered ${res.statusCode}`,
                );
            }
            this.base = base;
            return;
        }
        throw this.networkError(`reaching registry ${this.domain}`, lastError);
    }

    private networkError(what: string, cause: unknown): AirgapError {
        if (isAirgapError(cause)) {
            return cause;
        }
        const text = messageOf(cause);
        if (TLS_ERROR_RE.test(text)) {
            return new AirgapError(
                "ERR_NETWORK",
                `${what}: TLS verification failed (${text}); give the registry's CA certificate (caPem) ` +
                    `or declare it insecure`,
                { cause },
            );
        }
        return new AirgapError("ERR_NETWORK", `${what}: ${text}`, { cause });
    }

    private challengeOf(value: string | string[] | undefined): Challenge {
        const text = Array.isArray(value) ? value.join(", ") : value;
        if (text === undefined || text.trim() === "") {
            return { scheme: "basic" };
        }
        const challenges: AuthChallenge[] = parseWwwAuthenticate(text);
        const bearer = bearerChallenge(challenges);
        if (bearer !== undefined) {
            return bearer.service === undefined
                ? { scheme: "bearer", realm: bearer.realm }
                : { scheme: "bearer", realm: bearer.realm, service: bearer.service };
        }
        if (challenges.some((c) => c.scheme === "basic")) {
            return { scheme: "basic" };
        }
        throw new AirgapError(
            "ERR_NETWORK",
            `registry ${this.domain} asks for an unsupported authentication scheme (${challenges.map((c) => c.scheme).join(", ")})`,
        );
    }

    /** The absolute URL of `url` (a `/v2/...` path or an absolute upload location). */
    async resolve(url: string): Promise<URL> {
        await this.ping();
        return new URL(url, this.base);
    }

    /**
     * Sends a request with authentication, retries and redirects. Returns the response for any
     * status except 401 and 403 (ERR_AUTH, argument `credentials`) and retriable statuses
     * still failing after the last attempt (ERR_NETWORK). The caller MUST consume or dump the body.
     */
    async send(req: RegistryRequest): Promise<RegistryResponse> {
        if (this.closed) {
            throw new AirgapError("ERR_INVALID_ARGUMENT", `registry client for ${this.domain} is closed`);
        }
        await this.ping();
        const scopes = [repositoryScope(req.repository, req.actions), ...(req.extraScopes ?? [])];
        let url = new URL(req.url, this.base);
        let authRetried = false;
        let redirects = 0;
        const canRetry = req.retry !== false;
        while (true) {
            const sameOrigin = url.origin === this.base!.origin;
            const res = await this.withRetries(req.what, url, canRetry, async (u) => {
                const headers: Record<string, string> = { ...req.headers };
                if (sameOrigin) {
                    const authorization = await this.authorization(req.repository, scopes, req.what);
                    if (authorization !== undefined) {
                        headers["authorization"] = authorization;
                    }
                }
                return this.raw(req.method, u, headers, req.body);
            });
            if (res.statusCode === 401 && sameOrigin) {
                const challengeHeader = res.headers["www-authenticate"];
                await res.body.dump();
                if (!authRetried) {
                    authRetried = true;
                    await this.reauthenticate(challengeHeader, req, scopes);
                    continue;
                }
                throw this.refused(req, challengeHeader);
            }
            if (res.statusCode === 403) {
                const text = await readErrorText(this.wrap(res, url));
                throw authError(
                    `access denied to ${this.domain}/${req.repository} (${req.what}, needs ${req.actions}): ${describeErrorBody(text)}`,
                );
            }
            if (REDIRECT_STATUSES.has(res.statusCode) && (req.method === "GET" || req.method === "HEAD")) {
                const location = res.headers["location"];
                await res.body.dump();
                if (typeof location !== "string" || redirects >= MAX_REDIRECTS) {
                    throw new AirgapError(
                        "ERR_NETWORK",
                        `${req.what}: ${typeof location !== "string" ? "redirect without Location" : "too many redirects"}`,
                    );
                }
                redirects++;
                url = new URL(location, url);
                continue;
            }
            return this.wrap(res, url);
        }
    }

    private wrap(res: Dispatcher.ResponseData, url: URL): RegistryResponse {
        return { status: res.statusCode, headers: res.headers, body: res.body, url };
    }

    /** Runs `attempt` until it gives a non-retriable answer or the attempts are used up. */
    private async withRetries(
        what: string,
        url: URL,
        canRetry: boolean,
        attempt: (url: URL) => Promise<Dispatcher.ResponseData>,
    ): Promise<Dispatcher.ResponseData> {
        const attempts = canRetry ? (this.options.retry?.attempts ?? 4) : 1;
        for (let n = 1; ; n++) {
            let res: Dispatcher.ResponseData;
            try {
                res = await attempt(url);
            } catch (err) {
                if (n < attempts && isRetriableNetworkError(err)) {
                    await sleep(retryDelay(n, this.options.retry));
                    continue;
                }
                const tries = n > 1 ? ` after ${n} attempts` : "";
                throw this.networkError(`${what}: ${url.origin}${url.pathname} failed${tries}`, err);
            }
            if (isRetriableStatus(res.statusCode)) {
                const retryAfter = res.headers["retry-after"];
                if (n < attempts) {
                    await res.body.dump();
                    await sleep(
                        retryDelay(
                            n,
                            this.options.retry,
                            parseRetryAfter(typeof retryAfter === "string" ? retryAfter : undefined),
                        ),
                    );
                    continue;
                }
                const text = await readErrorText(this.wrap(res, url));
                throw new AirgapError(
                    "ERR_NETWORK",
                    `${what}: registry ${this.domain} answered ${res.statusCode}` +
                        `${attempts > 1 ? ` ${attempts} times` : ""}${text === "" ? "" : ` (${describeErrorBody(text)})`}`,
                );
            }
            return res;
        }
    }

    private raw(
        method: HttpMethod,
        url: URL,
        headers: Record<string, string>,
        body: Buffer | undefined,
    ): Promise<Dispatcher.ResponseData> {
        const timeout = this.options.timeoutMs ?? 120_000;
        return request(url, {
            method,
            headers: { "user-agent": this.options.userAgent ?? "pulumi-airgap", ...headers },
            body: body ?? (method === "PUT" || method === "POST" || method === "PATCH" ? "" : null),
            dispatcher: this.dispatcher,
            headersTimeout: timeout,
            bodyTimeout: timeout,
        });
    }

    private async authorization(repository: string, scopes: string[], what: string): Promise<string | undefined> {
        const challenge = this.challenge;
        if (challenge === undefined || challenge.scheme === "none") {
            return undefined;
        }
        const credentials = this.credentialsFor(repository);
        if (challenge.scheme === "basic") {
            return credentials?.kind === "basic"
                ? basicAuthorization(credentials.username, credentials.password)
                : undefined;
        }
        return `Bearer ${await this.token(challenge, scopes, credentials, what)}`;
    }

    private async token(
        challenge: Extract<Challenge, { scheme: "bearer" }>,
        scopes: string[],
        credentials: RegistryCredentials | undefined,
        what: string,
    ): Promise<string> {
        const key = [...new Set(scopes)].sort().join(" ");
        const cached = this.tokens.get(key);
        if (cached !== undefined && cached.expiresAt - TOKEN_EXPIRY_MARGIN_MS > Date.now()) {
            return cached.token;
        }
        let pending = this.tokenRequests.get(key);
        if (pending === undefined) {
            pending = this.fetchToken(challenge, [...new Set(scopes)], credentials, what).finally(() =>
                this.tokenRequests.delete(key),
            );
            this.tokenRequests.set(key, pending);
        }
        return pending;
    }

    private async fetchToken(
        challenge: Extract<Challenge, { scheme: "bearer" }>,
        scopes: string[],
        credentials: RegistryCredentials | undefined,
        what: string,
    ): Promise<string> {
        const realm = new URL(challenge.realm);
        let res: Dispatcher.ResponseData;
        const tokenWhat = `token for ${scopes.join(" ")} from ${realm.origin}${realm.pathname}`;
        if (credentials?.kind === "identity-token") {
            // The OAuth2 refresh-token grant of the distribution token spec.
            const form = new URLSearchParams({
                grant_type: "refresh_token",
                refresh_token: credentials.token,
                client_id: "pulumi-airgap",
                scope: scopes.join(" "),
            });
            if (challenge.service !== undefined) {
                form.set("service", challenge.service);
            }
            const body = Buffer.from(form.toString());
            res = await this.withRetries(tokenWhat, realm, true, (u) =>
                this.raw("POST", u, { "content-type": "application/x-www-form-urlencoded" }, body),
            );
        } else {
            const url = new URL(realm);
            if (challenge.service !== undefined) {
                url.searchParams.set("service", challenge.service);
            }
            for (const scope of scopes) {
                url.searchParams.append("scope", scope);
            }
            const headers: Record<string, string> =
                credentials?.kind === "basic"
                    ? { authorization: basicAuthorization(credentials.username, credentials.password) }
                    : {};
            res = await this.withRetries(tokenWhat, url, true, (u) => this.raw("GET", u, headers, undefined));
        }
        if (res.statusCode === 401 || res.statusCode === 403) {
            await res.body.dump();
            throw credentials === undefined
                ? this.authenticationRequired(what)
                : authError(
                      `wrong credentials for ${this.domain} (${what}): the token service ${realm.origin}${realm.pathname} refused them`,
                  );
        }
        if (res.statusCode !== 200) {
            const text = await readErrorText(this.wrap(res, realm));
            throw new AirgapError(
                "ERR_NETWORK",
                `${tokenWhat}: answered ${res.statusCode} (${describeErrorBody(text)})`,
            );
        }
        let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown } | null;
        try {
            doc = (await readJsonCapped(res.body, MAX_TOKEN_RESPONSE_SIZE, tokenWhat, {
                declaredLength: contentLengthOf(res.headers),
            })) as typeof doc;
        } catch (cause) {
            throw isAirgapError(cause) ? cause : this.networkError(`${tokenWhat}: reading the answer`, cause);
        }
        if (typeof doc !== "object" || doc === null) {
            throw new AirgapError("ERR_PARSE", `${tokenWhat}: the answer is not a JSON object`);
        }
        const token =
            typeof doc.token === "string" && doc.token !== ""
                ? doc.token
                : typeof doc.access_token === "string"
                  ? doc.access_token
                  : "";
        if (token === "") {
            throw new AirgapError("ERR_PARSE", `${tokenWhat}: the answer has no token`);
        }
        const lifetime =
            typeof doc.expires_in === "number" && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_LIFETIME_S;
        this.tokens.set([...scopes].sort().join(" "), { token, expiresAt: Date.now() + lifetime * 1000 });
        return token;
    }

    /** After a 401: learn the challenge again and drop the token that did not work. */
    private async reauthenticate(
        value: string | string[] | undefined,
        req: RegistryRequest,
        scopes: string[],
    ): Promise<void> {
        this.challenge = this.challengeOf(value);
        if (this.challenge.scheme === "bearer") {
            this.tokens.delete([...new Set(scopes)].sort().join(" "));
        } else if (this.challenge.scheme === "basic" && this.credentialsFor(req.repository) === undefined) {
            throw this.authenticationRequired(req.what);
        }
    }

    private authenticationRequired(what: string): AirgapError {
        return authError(
            `authentication required for ${this.domain} (${what}): the registry asks for credentials and none ` +
                `were given; give credentials, or a docker config.json / pull secret with an entry for ${this.domain}`,
        );
    }

    /** The error for a 401 that persisted after authenticating again. */
    private refused(req: RegistryRequest, value: string | string[] | undefined): AirgapError {
        const text = Array.isArray(value) ? value.join(", ") : (value ?? "");
        const credentials = this.credentialsFor(req.repository);
        if (/error="?insufficient_scope/.test(text)) {
            return authError(
                `${credentials === undefined ? "anonymous access" : "the credentials given"} to ${this.domain}/${req.repository} ` +
                    `do not allow ${req.actions} (${req.what})${credentials === undefined ? "; give credentials" : ""}`,
            );
        }
        return credentials === undefined
            ? this.authenticationRequired(req.what)
            : authError(`wrong credentials for ${this.domain} (${req.what}): the registry refused them`);
    }

    /**
     * One more holder (a source or destination sharing this client with others of a sync): each
     * holder MUST call `close` once; the connections are released by the last one.
     */
    retain(): this {
        if (this.closed) {
            throw new AirgapError("ERR_INVALID_ARGUMENT", `registry client for ${this.domain} is closed`);
        }
        this.holders++;
        return this;
    }

    /** Releases one holder; the last releases the connections (when the client created its own dispatcher). */
    async close(): Promise<void> {
        if (this.closed) {
            return;
        }
        if (--this.holders > 0) {
            return;
        }
        this.closed = true;
        if (this.ownsDispatcher) {
            await this.dispatcher.close();
        }
    }
}
