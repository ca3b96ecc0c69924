// TLS for both listeners from the files SecurityConfig names: grpc-js server credentials for the gRPC port
// and secure-server options for the HTTP port. Read once at start-up; a file that cannot be read, or a key
// that does not match its certificate, stops the server with a message naming the file.
//
// Mutual TLS differs on purpose between the ports. gRPC: grpc-js requires and verifies the client
// certificate in the handshake, so every gRPC client (health checks included) needs one. HTTP: the
// certificate is requested and verified in the handshake but checked per call by the Authorizer, so the
// probes (/healthz, /readyz, /metrics) stay reachable for load balancers and Prometheus, which rarely
// present client certificates, while every AgentRegistry call without a verified certificate is refused.

import * as grpc from "@grpc/grpc-js";
import { readFile } from "node:fs/promises";
import type { SecureServerOptions } from "node:http2";
import { createSecureContext } from "node:tls";
import { ConfigError, type TlsFiles } from "../config/index.js";

export interface ListenerTls {
  readonly grpc: grpc.ServerCredentials;
  readonly http: SecureServerOptions;
}

export async function loadListenerTls(files: TlsFiles): Promise<ListenerTls> {
  const [cert, key, clientCa] = await Promise.all([
    read(files.certFile, "--tls-cert"),
    read(files.keyFile, "--tls-key"),
    files.clientCaFile === undefined ? undefined : read(files.clientCaFile, "--tls-client-ca"),
  ]);
  try {
    createSecureContext({ cert, key, ...(clientCa === undefined ? {} : { ca: clientCa }) });
  } catch (error) {
    throw new ConfigError(
      `cannot use the TLS certificate ${files.certFile} with the key ${files.keyFile}${clientCa === undefined ? "" : ` and client CA ${files.clientCaFile}`}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  return {
    grpc: grpc.ServerCredentials.createSsl(clientCa ?? null, [{ cert_chain: cert, private_key: key }], clientCa !== undefined),
    http: {
      cert,
      key,
      ...(clientCa === undefined ? {} : { ca: clientCa, requestCert: true, rejectUnauthorized: false }),
    },
  };
}

async function read(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new ConfigError(`cannot read ${flag} ${path}: ${(error as Error).message}`, { cause: error });
  }
}
