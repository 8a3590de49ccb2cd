/**
 * Validation of HostMirrorConfig inputs. Runs before anything is written (the provider's
 * `check`, also during preview), so bad input never leaves a file behind.
 */
import { X509Certificate } from "node:crypto";
import { assertNoProblems, type Problem } from "../errors";
import { formatProblems } from "./formats/validate";
import { targetProblems } from "./target";
import type { HostMirrorSpec } from "./types";

export type { Problem } from "../errors";

const fileName = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const hostLabel = "[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?";
const host = `(?:\\*\\.)?${hostLabel}(?:\\.${hostLabel})*|\\[[0-9A-Fa-f:.]+\\]`;
const pathComponent = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
/** `host[:port][/namespace...]`, as registries.conf(5) locations and prefixes are written. */
const registryLocation = new RegExp(`^(?:${host})(?::[0-9]{1,5})?(?:/${pathComponent})*$`);
const uriScheme = /^[a-z][a-z0-9+.-]*:\/\/\S+$/;

function checkFileName(problems: Problem[], argument: string, value: unknown): void {
    if (typeof value !== "string" || value === "") {
        problems.push({ argument, problem: "must be a non-empty file name" });
    } else if (value.includes("/") || value.includes("..") || !fileName.test(value)) {
        problems.push({
            argument,
            problem: `"${value}" is not a plain file name: use letters, digits, '.', '_' and '-' (no '/' or '..')`,
        });
    }
}

function checkLocation(problems: Problem[], argument: string, value: unknown): void {
    if (typeof value !== "string" || value.trim() === "") {
        problems.push({ argument, problem: "must not be empty: give a registry host such as quay.io" });
    } else if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) {
        problems.push({
            argument,
            problem: `"${value}" has a scheme: write host[:port][/namespace] without "${value.split("://")[0]}://"`,
        });
    } else if (!registryLocation.test(value)) {
        problems.push({
            argument,
            problem: `"${value}" is not a registry location of the form host[:port][/namespace]`,
        });
    }
}

function checkStringList(problems: Problem[], argument: string, value: unknown, what: string): value is string[] {
    if (!Array.isArray(value) || value.length === 0) {
        problems.push({ argument, problem: `must list at least one ${what}` });
        return false;
    }
    value.forEach((v, i) => {
        if (typeof v !== "string" || v.trim() === "" || /\s/.test(v)) {
            problems.push({ argument: `${argument}[${i}]`, problem: `must be a non-empty ${what} without spaces` });
        }
    });
    return true;
}

function checkCertificates(problems: Problem[], argument: string, pem: unknown): void {
    const blocks =
        typeof pem === "string" ? pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) : null;
    if (!blocks) {
        problems.push({ argument, problem: "is not a PEM certificate (no BEGIN CERTIFICATE block)" });
        return;
    }
    // The file is world-readable and its text goes into the state: a key must never ride along.
    if (typeof pem === "string" && /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(pem)) {
        problems.push({ argument, problem: "holds a private key: give the CA certificate(s) only" });
        return;
    }
    blocks.forEach((block, i) => {
        try {
            new X509Certificate(block);
        } catch (err) {
            problems.push({
                argument,
                problem: `certificate ${i + 1} does not parse: ${err instanceof Error ? err.message : String(err)}`,
            });
        }
    });
}

async function checkArmoredPublicKey(problems: Problem[], argument: string, armored: unknown): Promise<void> {
    if (typeof armored !== "string" || armored.trim() === "") {
        problems.push({ argument, problem: "must be an armored OpenPGP public key" });
        return;
    }
    const openpgp = await import("openpgp");
    try {
        const keys = await openpgp.readKeys({ armoredKeys: armored });
        if (keys.some((k) => k.isPrivate())) {
            problems.push({ argument, problem: "is a private key: give the public key (gpg --armor --export)" });
        }
    } catch (err) {
        problems.push({
            argument,
            problem: `is not an armored OpenPGP public key: ${err instanceof Error ? err.message : String(err)}`,
        });
    }
}

function checkUnique(problems: Problem[], argument: string, names: unknown[]): void {
    const seen = new Set<unknown>();
    names.forEach((n, i) => {
        if (seen.has(n)) {
            problems.push({ argument: `${argument}[${i}].name`, problem: `"${String(n)}" is used twice` });
        }
        seen.add(n);
    });
}

/** Every problem with the inputs, each naming its argument. Empty when they are valid. */
export async function validateHostMirrorSpec(spec: HostMirrorSpec): Promise<Problem[]> {
    const problems: Problem[] = [];
    checkFileName(problems, "name", spec.name);

    problems.push(...targetProblems(spec));

    (spec.registries ?? []).forEach((r, i) => {
        const at = `registries[${i}]`;
        checkLocation(problems, `${at}.source`, r?.source);
        if (!Array.isArray(r?.mirrors) || r.mirrors.length === 0) {
            problems.push({ argument: `${at}.mirrors`, problem: "must list at least one mirror location" });
        } else {
            r.mirrors.forEach((m, j) => {
                checkLocation(problems, `${at}.mirrors[${j}]`, m);
            });
        }
    });

    const certs = spec.caCertificates ?? [];
    certs.forEach((c, i) => {
        checkFileName(problems, `caCertificates[${i}].name`, c?.name);
        checkCertificates(problems, `caCertificates[${i}].pem`, c?.pem);
    });
    checkUnique(
        problems,
        "caCertificates",
        certs.map((c) => c?.name),
    );

    const apt = spec.apt ?? [];
    for (const [i, s] of apt.entries()) {
        const at = `apt[${i}]`;
        checkFileName(problems, `${at}.name`, s?.name);
        if (checkStringList(problems, `${at}.uris`, s?.uris, "URI")) {
            s.uris.forEach((u, j) => {
                if (!uriScheme.test(u)) {
                    problems.push({
                        argument: `${at}.uris[${j}]`,
                        problem: `"${u}" is not a URI such as http://host/debian`,
                    });
                }
            });
        }
        const suitesOk = checkStringList(problems, `${at}.suites`, s?.suites, "suite");
        const exactPaths = suitesOk && s.suites.every((x) => x.endsWith("/"));
        if (!exactPaths) {
            checkStringList(problems, `${at}.components`, s?.components, "component");
        }
        if (s?.architectures !== undefined) {
            checkStringList(problems, `${at}.architectures`, s.architectures, "architecture");
        }
        await checkArmoredPublicKey(problems, `${at}.signedBy`, s?.signedBy);
    }
    checkUnique(
        problems,
        "apt",
        apt.map((s) => s?.name),
    );
    problems.push(...formatProblems(spec, checkLocation));
    return problems;
}

/** Throws one ERR_INVALID_ARGUMENT error listing every problem. */
export async function assertValidHostMirrorSpec(spec: HostMirrorSpec): Promise<void> {
    assertNoProblems(await validateHostMirrorSpec(spec));
}
