// TLS for both listeners from the files SecurityConfig names: grpc-js server credentials for the gRPC port
// and secure-server options for the HTTP port, and reload() to read the files again (SIGHUP). At start-up a
// file that cannot be read or used stops the server with a message naming the file; on reload the same
// message is the caller's to log, and the certificates in use stay as they were. A reload changes what new
// connections are served; connections already open (and their streams) keep the handshake they made.
//
// Mutual TLS differs on purpose between the ports. gRPC: grpc-js requires and verifies the client
// certificate in the handshake, so every gRPC client (health checks included) needs one. HTTP: the
// certificate is requested and verified in the handshake but checked per call by the Authorizer, so the
// probes (/healthz, /readyz, /metrics) stay reachable for load balancers and Prometheus, which rarely
// present client certificates, while every AgentRegistry call without a verified certificate is refused.

import * as grpc from "@grpc/grpc-js";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { SecureServerOptions } from "node:http2";
import { type SecureContextOptions, createSecureContext } from "node:tls";
import { ConfigError, SETTINGS, type TlsFiles } from "../config/index.js";

/** The files' contents, checked to work together. */
interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly clientCa: Buffer | undefined;
  /** The leaf certificate, for log lines. */
  readonly leaf: X509Certificate;
}

/** What a reload now serves, for its log line. */
export interface TlsServed {
  readonly certFile: string;
  readonly subject: string;
  readonly validTo: string;
  readonly fingerprint256: string;
  readonly clientCaFile: string | undefined;
}

type Listener<T> = (update: T | null) => void;

/**
 * grpc-js's way to change a secure server's certificates while it runs (a CertificateProvider, from its
 * `experimental` exports): it listens here and puts each update into the server's secure context.
 */
class CertificateFeed<T> {
  private readonly listeners = new Set<Listener<T>>();

  constructor(private current: T) {}

  set(update: T): void {
    this.current = update;
    for (const listener of this.listeners) listener(update);
  }

  add(listener: Listener<T>): void {
    this.listeners.add(listener);
    // Told on the next microtask, not at once: grpc-js registers the server that waits for the update
    // only after adding this listener, and would miss an update given now (the port would refuse every
    // handshake). Still long before the first connection can arrive.
    queueMicrotask(() => {
      if (this.listeners.has(listener)) listener(this.current);
    });
  }

  remove(listener: Listener<T>): void {
    this.listeners.delete(listener);
  }
}

export class ListenerTls {
  /** For the gRPC listener's bindAsync. */
  readonly grpc: grpc.ServerCredentials;
  /** For the HTTP listener's secure server; what a reload changes is handed to `onHttpUpdate`. */
  readonly http: SecureServerOptions;
  private readonly identity: CertificateFeed<grpc.experimental.IdentityCertificateUpdate>;
  private readonly clientCa: CertificateFeed<grpc.experimental.CaCertificateUpdate> | undefined;
  private httpUpdate: ((options: SecureContextOptions) => void) | undefined;

  private constructor(
    private readonly files: TlsFiles,
    material: TlsMaterial,
  ) {
    this.identity = new CertificateFeed({ certificate: material.cert, privateKey: material.key });
    this.clientCa = material.clientCa === undefined ? undefined : new CertificateFeed({ caCertificate: material.clientCa });
    this.grpc = grpc.experimental.createCertificateProviderServerCredentials(
      // grpc-js names its first parameter for the CA, but takes it as the identity (its constructor's order).
      provider({ identity: this.identity }),
      this.clientCa === undefined ? null : provider({ ca: this.clientCa }),
      this.clientCa !== undefined,
    );
    this.http = {
      cert: material.cert,
      key: material.key,
      ...(material.clientCa === undefined ? {} : { ca: material.clientCa, requestCert: true, rejectUnauthorized: false }),
    };
  }

  /** Reads and checks the files; a ConfigError names the file at fault. */
  static async load(files: TlsFiles): Promise<ListenerTls> {
    return new ListenerTls(files, await readTlsMaterial(files));
  }

  /** Where the HTTP listener takes a new secure context (tls.Server's setSecureContext). */
  onHttpUpdate(update: (options: SecureContextOptions) => void): void {
    this.httpUpdate = update;
  }

  /**
   * Reads the files again and serves them to new connections on both listeners. Throws a ConfigError
   * naming the file at fault, and then changes nothing.
   */
  async reload(): Promise<TlsServed> {
    const material = await readTlsMaterial(this.files);
    const { cert, key, clientCa } = material;
    this.httpUpdate?.({ cert, key, ...(clientCa === undefined ? {} : { ca: clientCa }) });
    this.identity.set({ certificate: cert, privateKey: key });
    if (clientCa !== undefined) this.clientCa?.set({ caCertificate: clientCa });
    return {
      certFile: this.files.certFile,
      subject: material.leaf.subject.replaceAll("\n", ", "),
      validTo: material.leaf.validTo,
      fingerprint256: material.leaf.fingerprint256,
      clientCaFile: this.files.clientCaFile,
    };
  }
}

function provider(feeds: {
  identity?: CertificateFeed<grpc.experimental.IdentityCertificateUpdate>;
  ca?: CertificateFeed<grpc.experimental.CaCertificateUpdate>;
}): grpc.experimental.CertificateProvider {
  return {
    addCaCertificateListener: (listener) => feeds.ca?.add(listener),
    removeCaCertificateListener: (listener) => feeds.ca?.remove(listener),
    addIdentityCertificateListener: (listener) => feeds.identity?.add(listener),
    removeIdentityCertificateListener: (listener) => feeds.identity?.remove(listener),
  };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

async function readTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const [cert, key, clientCa] = await Promise.all([
    read(files.certFile, SETTINGS.tlsCert.flag),
    read(files.keyFile, SETTINGS.tlsKey.flag),
    files.clientCaFile === undefined ? undefined : read(files.clientCaFile, SETTINGS.tlsClientCa.flag),
  ]);
  const leaf = certificates(cert, `${SETTINGS.tlsCert.flag} ${files.certFile}`)[0] as X509Certificate;
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new ConfigError(`${SETTINGS.tlsKey.flag} ${files.keyFile} is not a private key in PEM: ${(error as Error).message}`, { cause: error });
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new ConfigError(
      `${SETTINGS.tlsKey.flag} ${files.keyFile} is not the private key of the certificate ${files.certFile}: give the key the certificate was made for`,
    );
  }
  if (clientCa !== undefined) certificates(clientCa, `${SETTINGS.tlsClientCa.flag} ${files.clientCaFile ?? ""}`);
  try {
    createSecureContext({ cert, key, ...(clientCa === undefined ? {} : { ca: clientCa }) });
  } catch (error) {
    throw new ConfigError(
      `cannot use the TLS certificate ${files.certFile} with the key ${files.keyFile}${clientCa === undefined ? "" : ` and client CA ${files.clientCaFile}`}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return { cert, key, clientCa, leaf };
}

/** Every certificate in a PEM file; a file with none, or with one that does not parse, is a ConfigError naming `what`. */
function certificates(pem: Buffer, what: string): X509Certificate[] {
  const blocks = pem.toString("utf8").match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new ConfigError(`${what} holds no certificate in PEM (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new ConfigError(`${what}: certificate ${index + 1} does not parse: ${(error as Error).message}`, { cause: error });
    }
  });
}

async function read(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new ConfigError(`cannot read ${flag} ${path}: ${(error as Error).message}`, { cause: error });
  }
}
