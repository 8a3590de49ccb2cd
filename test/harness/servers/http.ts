import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { join, normalize, sep } from "node:path";

/**
 * A static file server on 127.0.0.1 (port 0) that can misbehave on purpose.
 *
 * It serves the files below `root` for GET and HEAD with a Content-Length; anything else under
 * the root (missing files, directories) is a 404. Fault rules, set per path, make it answer
 * with an error status, reset the connection in the middle of the body, cut the body short,
 * serve different bytes, or answer late. Every request is logged, so a test can check what was
 * and was not downloaded.
 */

export interface FaultRule {
    /** Answer with this status and a short text body instead of the file. */
    status?: number;
    /** Send the headers and half the body (at least one byte when there is one), then destroy the socket. */
    reset?: boolean;
    /** Send the full file's Content-Length but only the first N bytes, then close the connection. */
    truncate?: number;
    /** Serve these bytes (with their own Content-Length) instead of the file, e.g. to break a checksum. */
    replaceBody?: Buffer;
    /** Wait this long before answering; combines with the other fields. */
    delayMs?: number;
    /** How many requests the rule applies to; unlimited when absent. */
    times?: number;
}

/** What the server did with one request. */
export interface RequestLogEntry {
    method: string;
    /** The decoded URL path, without the query string. */
    path: string;
    /** The status sent (for `reset` and `truncate`, the status of the headers that were sent). */
    status: number;
    /** The kind of fault applied, if any. */
    fault?: "status" | "reset" | "truncate" | "replaceBody" | "delay";
}

export interface StaticServer {
    /** `http://127.0.0.1:PORT` (no trailing slash). */
    readonly url: string;
    readonly port: number;
    readonly root: string;
    /** Every request so far, in arrival order. */
    readonly requests: readonly RequestLogEntry[];
    /** Adds a rule for an exact path (e.g. "/dists/stable/InRelease") or for paths matching a RegExp. */
    fault(path: string | RegExp, rule: FaultRule): void;
    clearFaults(): void;
    clearLog(): void;
    /** The logged requests for one path, optionally only one method. */
    requestsFor(path: string, method?: string): RequestLogEntry[];
    /** Stops listening and drops open connections. */
    close(): Promise<void>;
}

interface ActiveRule {
    match: string | RegExp;
    rule: FaultRule;
    left: number;
}

export interface StaticServerOptions {
    /** Extra headers on every successful answer, e.g. `{ "cache-control": "no-store" }`. */
    headers?: Record<string, string>;
}

export async function startStaticServer(root: string, options: StaticServerOptions = {}): Promise<StaticServer> {
    const rules: ActiveRule[] = [];
    const requests: RequestLogEntry[] = [];
    const sockets = new Set<Socket>();

    const takeRule = (path: string): FaultRule | undefined => {
        for (const active of rules) {
            const hit = typeof active.match === "string" ? active.match === path : active.match.test(path);
            if (hit && active.left > 0) {
                active.left--;
                return active.rule;
            }
        }
        return undefined;
    };

    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
        const method = req.method ?? "GET";
        let path: string;
        try {
            path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
        } catch {
            path = req.url ?? "/";
        }
        const entry: RequestLogEntry = { method, path, status: 0 };
        requests.push(entry);
        const send = (status: number, body: Buffer | string, headers: Record<string, string> = {}): void => {
            entry.status = status;
            const bytes = typeof body === "string" ? Buffer.from(body) : body;
            res.writeHead(status, { "content-length": String(bytes.length), ...headers });
            res.end(method === "HEAD" ? undefined : bytes);
        };

        if (method !== "GET" && method !== "HEAD") {
            send(405, "method not allowed\n", { allow: "GET, HEAD" });
            return;
        }
        const rule = takeRule(path);
        if (rule?.delayMs !== undefined) {
            entry.fault = "delay";
            await new Promise((r) => setTimeout(r, rule.delayMs));
        }
        if (rule?.status !== undefined) {
            entry.fault = "status";
            send(rule.status, `injected status ${rule.status}\n`, { "content-type": "text/plain" });
            return;
        }
        if (rule?.replaceBody !== undefined) {
            entry.fault = "replaceBody";
            send(200, rule.replaceBody, { ...options.headers, "content-type": "application/octet-stream" });
            return;
        }

        const file = resolveInside(root, path);
        const info = file === undefined ? undefined : await stat(file).catch(() => undefined);
        if (file === undefined || info === undefined || !info.isFile()) {
            send(404, "not found\n", { "content-type": "text/plain" });
            return;
        }
        const headers = {
            ...options.headers,
            "content-type": "application/octet-stream",
            "content-length": String(info.size),
            "last-modified": info.mtime.toUTCString(),
        };
        entry.status = 200;
        if (method === "HEAD") {
            res.writeHead(200, headers);
            res.end();
            return;
        }
        if (rule?.reset === true || rule?.truncate !== undefined) {
            entry.fault = rule.reset === true ? "reset" : "truncate";
            const limit =
                rule.reset === true
                    ? Math.max(1, Math.floor(info.size / 2))
                    : Math.max(0, Math.min(rule.truncate ?? 0, info.size));
            res.writeHead(200, headers);
            res.flushHeaders();
            const partial = limit === 0 ? Buffer.alloc(0) : await readPrefix(file, limit);
            res.write(partial, () => {
                // `destroy` after the write callback so the partial body reaches the client first.
                if (rule.reset === true) res.socket?.resetAndDestroy();
                else res.socket?.destroySoon();
            });
            return;
        }
        res.writeHead(200, headers);
        const stream = createReadStream(file);
        stream.on("error", () => res.destroy());
        stream.pipe(res);
    };

    const server = createServer((req, res) => {
        handle(req, res).catch((e: unknown) => {
            if (!res.headersSent) {
                res.writeHead(500, { "content-type": "text/plain" });
                res.end(`static server error: ${String(e)}\n`);
            } else {
                res.destroy();
            }
        });
    });
    server.on("connection", (socket) => {
        sockets.add(socket);
        socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            server.off("error", reject);
            resolve();
        });
    });
    const port = (server.address() as AddressInfo).port;

    return {
        url: `http://127.0.0.1:${port}`,
        port,
        root,
        requests,
        fault(path, rule) {
            rules.push({ match: path, rule, left: rule.times ?? Number.POSITIVE_INFINITY });
        },
        clearFaults() {
            rules.length = 0;
        },
        clearLog() {
            requests.length = 0;
        },
        requestsFor(path, method) {
            return requests.filter((r) => r.path === path && (method === undefined || r.method === method));
        },
        close() {
            return new Promise<void>((resolve) => {
                for (const socket of sockets) socket.destroy();
                server.close(() => resolve());
            });
        },
    };
}

/** Maps a URL path to a file below root, or undefined when it would escape the root. */
function resolveInside(root: string, urlPath: string): string | undefined {
    if (urlPath.includes("\0")) return undefined;
    const full = normalize(join(root, urlPath));
    const base = normalize(root.endsWith(sep) ? root : root + sep);
    return full.startsWith(base) ? full : undefined;
}

async function readPrefix(file: string, length: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of createReadStream(file, { start: 0, end: length - 1 })) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}
