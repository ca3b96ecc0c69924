// TLS certificates and the client CA read again on reload (SIGHUP), over both listeners, with certificates
// made by openssl at test time: new connections get the renewed certificate while streams opened before
// carry on; a broken new file keeps the certificate in use and logs an error naming the file; a new client
// CA decides which client certificates new connections may present.

import { X509Certificate } from "node:crypto";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { NO_SECURITY } from "../../src/config/index.js";
import type { Log } from "../../src/common/log.js";
import { type CertFiles, type TestCerts, makeClientCert, makeServerCert, makeTestCerts } from "../support/certs.js";
import { type RegistryClient, connectClient, grpcClient, rejection } from "../support/clients.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";
import { type TestServer, makeDataDir, startTestServer } from "../support/test-server.js";

let certs: TestCerts;
let renewed: CertFiles;
let strangerClient: CertFiles;
/** Where the running server's TLS files are: copies, so a test can replace them. */
let tlsDir: string;
const files = () => ({ certFile: join(tlsDir, "server.crt"), keyFile: join(tlsDir, "server.key"), clientCaFile: join(tlsDir, "clients-ca.crt") });
const servers: TestServer[] = [];
const clients: RegistryClient[] = [];

beforeAll(async () => {
  certs = await makeTestCerts();
  [renewed, strangerClient] = await Promise.all([
    makeServerCert(certs, "server-renewed"),
    makeClientCert(certs, "stranger-agent", "other-ca", "agent"),
  ]);
});

afterAll(async () => {
  await certs.remove();
});

beforeEach(async () => {
  tlsDir = await mkdtemp(join(tmpdir(), "agent-registry-tls-"));
  await installServerCert(certs.server);
  await copyFile(certs.ca, files().clientCaFile);
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) await server.dispose();
  await rm(tlsDir, { recursive: true, force: true });
});

async function installServerCert(pair: CertFiles): Promise<void> {
  await Promise.all([copyFile(pair.cert, files().certFile), copyFile(pair.key, files().keyFile)]);
}

/** The lines a server logged, by level. */
class LogLines implements Log {
  readonly lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  debug(): void {}
  info(fields: object, message: string): void {
    this.lines.push({ level: "info", fields: fields as Record<string, unknown>, message });
  }
  warn(fields: object, message: string): void {
    this.lines.push({ level: "warn", fields: fields as Record<string, unknown>, message });
  }
  error(fields: object, message: string): void {
    this.lines.push({ level: "error", fields: fields as Record<string, unknown>, message });
  }
  at(level: string): string[] {
    return this.lines.filter((line) => line.level === level).map((line) => line.message);
  }
}

async function start(options: { clientCa?: boolean } = {}): Promise<{ server: TestServer; log: LogLines }> {
  const log = new LogLines();
  const { certFile, keyFile, clientCaFile } = files();
  const server = await startTestServer(
    { security: { ...NO_SECURITY, tls: { certFile, keyFile, clientCaFile: options.clientCa === true ? clientCaFile : undefined } } },
    { log },
  );
  servers.push(server);
  return { server, log };
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to `host:port` is served. */
function servedFingerprint(address: string, clientPair?: { cert: Buffer; key: Buffer }): Promise<string> {
  const url = new URL(address.includes("://") ? address : `https://${address}`);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: url.hostname, port: Number(url.port), ALPNProtocols: ["h2"], rejectUnauthorized: false, ...clientPair },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.destroy();
      },
    );
    socket.once("error", reject);
  });
}

async function fingerprintOf(path: string): Promise<string> {
  return new X509Certificate(await readFile(path)).fingerprint256;
}

async function trustingCa(clientPair?: CertFiles): Promise<{ ca: Buffer; cert?: Buffer; key?: Buffer }> {
  const ca = await readFile(certs.ca);
  return clientPair === undefined ? { ca } : { ca, cert: await readFile(clientPair.cert), key: await readFile(clientPair.key) };
}

function grpcTo(server: TestServer, tls: Awaited<ReturnType<typeof trustingCa>>): RegistryClient {
  const client = grpcClient(server.grpcAddress, { tls });
  clients.push(client);
  return client;
}

function connectTo(server: TestServer, tls: Awaited<ReturnType<typeof trustingCa>>): RegistryClient {
  const client = connectClient(server.httpUrl, { tls });
  clients.push(client);
  return client;
}

describe("a renewed server certificate", () => {
  it("is served to new connections on both listeners after a reload, while streams opened before carry on", async () => {
    const { server, log } = await start();
    const before = await fingerprintOf(certs.server.cert);
    const after = await fingerprintOf(renewed.cert);
    const trust = await trustingCa();
    const grpcBefore = grpcTo(server, trust);
    const connectBefore = connectTo(server, trust);
    const { agent } = await grpcBefore.register({ hostname: "gpu-01", ipAddress: "10.0.0.1" });
    const beat = grpcBefore.heartbeat();
    beat.send({ agentId: agent?.id ?? "", seq: 1n });
    await beat.recv();
    const watch = connectBefore.watch();
    expect((await watch.recv()).agent?.hostname).toBe("gpu-01");
    expect([await servedFingerprint(server.grpcAddress), await servedFingerprint(server.httpUrl)]).toEqual([before, before]);

    await installServerCert(renewed);
    expect(await server.reload()).toBe(true);

    expect([await servedFingerprint(server.grpcAddress), await servedFingerprint(server.httpUrl)]).toEqual([after, after]);
    expect(log.at("info")).toContainEqual(expect.stringMatching(/^TLS certificates reloaded: new connections get .*server\.crt/));
    // The streams opened under the old certificate are still served.
    beat.send({ agentId: agent?.id ?? "", seq: 2n });
    expect((await beat.recv()).seq).toBe(2n);
    await grpcTo(server, trust).register({ hostname: "gpu-02", ipAddress: "10.0.0.2" });
    expect((await watch.recv()).agent?.hostname).toBe("gpu-02");
    // And new clients trusting the same CA connect on both listeners.
    expect((await connectTo(server, trust).listAgents()).agents).toHaveLength(2);
    expect((await grpcTo(server, trust).listAgents()).agents).toHaveLength(2);
  });
});

describe("a broken new file", () => {
  it.each([
    { what: "a certificate file that is not PEM", file: "server.crt", text: "not a certificate\n", message: /server\.crt holds no certificate in PEM/ },
    { what: "a key that is not a key", file: "server.key", text: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", message: /server\.key is not a private key in PEM/ },
  ])("($what) keeps the certificate in use on both listeners and logs an error naming the file", async ({ file, text, message }) => {
    const { server, log } = await start();
    const before = await fingerprintOf(certs.server.cert);
    await writeFile(join(tlsDir, file), text);

    expect(await server.reload()).toBe(false);

    const [line] = log.at("error");
    expect(line).toMatch(message);
    expect(line).toContain(join(tlsDir, file));
    expect(line).toMatch(/the certificates in use stay in use$/);
    expect([await servedFingerprint(server.grpcAddress), await servedFingerprint(server.httpUrl)]).toEqual([before, before]);
    const trust = await trustingCa();
    expect((await grpcTo(server, trust).register({ hostname: "gpu-01", ipAddress: "10.0.0.1" })).agent?.hostname).toBe("gpu-01");
    expect((await connectTo(server, trust).listAgents()).agents).toHaveLength(1);
  });

  it("(a key of another certificate) keeps the pair in use and names both files", async () => {
    const { server, log } = await start();
    const before = await fingerprintOf(certs.server.cert);
    await copyFile(renewed.key, files().keyFile);

    expect(await server.reload()).toBe(false);

    expect(log.at("error")).toEqual([
      `--tls-key ${files().keyFile} is not the private key of the certificate ${files().certFile}: give the key the certificate was made for; the certificates in use stay in use`,
    ]);
    expect(await servedFingerprint(server.httpUrl)).toBe(before);
    expect(await servedFingerprint(server.grpcAddress)).toBe(before);
  });

  it("(a missing file) keeps the certificate in use and names the file", async () => {
    const { server, log } = await start();
    await rm(files().certFile);

    expect(await server.reload()).toBe(false);

    expect(log.at("error")[0]).toMatch(new RegExp(`^cannot read --tls-cert ${files().certFile}: ENOENT`));
    expect(await servedFingerprint(server.httpUrl)).toBe(await fingerprintOf(certs.server.cert));
  });
});

describe("a new client CA", () => {
  it("decides which client certificates new connections may present, on both listeners", async () => {
    const { server } = await start({ clientCa: true });
    const ours = await trustingCa(certs.client.agent);
    const theirs = await trustingCa(strangerClient);
    const connectOurs = connectTo(server, ours);
    expect((await connectOurs.register({ hostname: "gpu-01", ipAddress: "10.0.0.1" })).agent?.hostname).toBe("gpu-01");
    expect((await rejection(grpcTo(server, theirs).register({ hostname: "gpu-02", ipAddress: "10.0.0.2" }))).code).toBe(Code.Unavailable);
    expect((await rejection(connectTo(server, theirs).register({ hostname: "gpu-02", ipAddress: "10.0.0.2" }))).code).toBe(
      Code.Unauthenticated,
    );

    await copyFile(certs.otherCa, files().clientCaFile);
    expect(await server.reload()).toBe(true);

    expect((await grpcTo(server, theirs).register({ hostname: "gpu-02", ipAddress: "10.0.0.2" })).agent?.hostname).toBe("gpu-02");
    expect((await connectTo(server, theirs).register({ hostname: "gpu-03", ipAddress: "10.0.0.3" })).agent?.hostname).toBe("gpu-03");
    expect((await rejection(grpcTo(server, ours).register({ hostname: "gpu-04", ipAddress: "10.0.0.4" }))).code).toBe(Code.Unavailable);
    // A connection made under the old CA keeps its verified certificate.
    expect((await connectOurs.register({ hostname: "gpu-01", ipAddress: "10.0.0.1" })).agent?.hostname).toBe("gpu-01");
  });
});

describe("agent-registry serve", () => {
  let dataDir: string;
  let running: ServerProcess | undefined;

  beforeEach(async () => {
    dataDir = await makeDataDir();
  });

  afterEach(async () => {
    if (running !== undefined && running.child.exitCode === null) {
      running.child.kill("SIGKILL");
      await running.exited;
    }
    running = undefined;
    await rm(dataDir, { recursive: true, force: true });
  });

  it("reads the TLS files again on SIGHUP", async () => {
    running = await startServerProcess(dataDir, {
      REGISTRY_TLS_CERT: files().certFile,
      REGISTRY_TLS_KEY: files().keyFile,
      LOG_LEVEL: "info",
    });
    const server = running;
    expect(await servedFingerprint(server.httpUrl)).toBe(await fingerprintOf(certs.server.cert));

    await installServerCert(renewed);
    server.child.kill("SIGHUP");
    const deadline = Date.now() + 5000;
    while (!server.stderr().includes("TLS certificates reloaded") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));

    expect(server.stderr()).toContain("TLS certificates reloaded");
    expect([await servedFingerprint(server.grpcAddress), await servedFingerprint(server.httpUrl)]).toEqual([
      await fingerprintOf(renewed.cert),
      await fingerprintOf(renewed.cert),
    ]);
    expect(server.child.exitCode).toBeNull();
  });
});
