/**
 * nginx (Debian's nginx-light) serving a directory on 127.0.0.1, for `--upstream nginx`: the
 * kind of web server a real upstream or site mirror runs, instead of the test harness' static
 * server (a single node process).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { getStatus } from "../../test/harness/servers/registry";
import { type ManagedProcess, startProcess, startWithFreePort, waitUntil } from "../../test/harness/servers/process";
import { makeTempDir } from "../../test/harness/tmp";

export interface NginxServer {
    readonly url: string;
    close(): Promise<void>;
}

export async function startNginx(root: string): Promise<NginxServer> {
    const dir = await makeTempDir("bench-nginx");
    return startWithFreePort(async (port) => {
        const conf = join(dir, "nginx.conf");
        // Runs as the invoking user: the temporary directories are private to it.
        const user = process.getuid?.() === 0 ? "user root;\n" : "";
        await writeFile(
            conf,
            `daemon off;
${user}worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")};
events { worker_connections 512; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  server {
    listen 127.0.0.1:${port};
    root ${root};
    default_type application/octet-stream;
  }
}
`,
        );
        const child: ManagedProcess = startProcess("nginx", ["-c", conf, "-p", dir], { name: "nginx" });
        const url = `http://127.0.0.1:${port}`;
        try {
            await waitUntil(async () => (await getStatus(`${url}/`)) > 0, {
                what: "nginx to answer",
                process: child,
                timeoutMs: 10_000,
            });
        } catch (e) {
            await child.stop();
            throw new Error(`nginx did not start: ${child.log()}`, { cause: e });
        }
        return { url, close: () => child.stop() };
    });
}
