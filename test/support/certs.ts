// Throwaway certificates for TLS tests, made with `openssl` at test time in a temp directory (no private key
// is ever committed): a CA, a server certificate for 127.0.0.1 and localhost, client certificates whose
// subject OU names a role (or none), and a second CA nobody trusts.

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export interface TestCerts {
  readonly dir: string;
  /** The CA that signs everything below. */
  readonly ca: string;
  /** A CA that signed nothing here: trusting only it must fail. */
  readonly otherCa: string;
  /** For 127.0.0.1 and localhost (subjectAltName), serverAuth. */
  readonly server: CertFiles;
  /** Client certificates (clientAuth) with subject OU=agent, reader, admin; `nobody` has no OU. */
  readonly client: Readonly<Record<"agent" | "reader" | "admin" | "nobody", CertFiles>>;
  /** A client certificate for OU=admin signed by the other CA. */
  readonly strangerAdmin: CertFiles;
  read(path: string): Promise<Buffer>;
  remove(): Promise<void>;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run("openssl", args, { cwd: dir });
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=agent-registry test ${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

async function makeLeaf(dir: string, name: string, ca: string, subject: string, extensions: string): Promise<CertFiles> {
  await writeFile(join(dir, `${name}.ext`), extensions);
  await openssl(dir, [
    "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject,
  ]);
  await openssl(dir, [
    "x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`,
    // A serial of its own (not -CAcreateserial): the leaves are made in parallel.
    "-set_serial", `0x${randomBytes(12).toString("hex")}`,
    "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`,
  ]);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

const SERVER_EXT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n";
const CLIENT_EXT = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n";

/** Another server certificate for 127.0.0.1 and localhost (a renewal), with a new key, signed by `ca`. */
export function makeServerCert(certs: TestCerts, name: string, ca: "ca" | "other-ca" = "ca"): Promise<CertFiles> {
  return makeLeaf(certs.dir, name, ca, "/CN=localhost", SERVER_EXT);
}

/** Another client certificate whose subject OU is `role`, signed by `ca`. */
export function makeClientCert(certs: TestCerts, name: string, ca: "ca" | "other-ca", role: string): Promise<CertFiles> {
  return makeLeaf(certs.dir, name, ca, `/O=fleet/OU=${role}/CN=${name}`, CLIENT_EXT);
}

export async function makeTestCerts(): Promise<TestCerts> {
  const dir = await mkdtemp(join(tmpdir(), "agent-registry-certs-"));
  await Promise.all([makeCa(dir, "ca"), makeCa(dir, "other-ca")]);
  const [server, agent, reader, admin, nobody, strangerAdmin] = await Promise.all([
    makeLeaf(
      dir,
      "server",
      "ca",
      "/CN=localhost",
      SERVER_EXT,
    ),
    makeLeaf(dir, "client-agent", "ca", "/O=fleet/OU=agent/CN=gpu-01", CLIENT_EXT),
    makeLeaf(dir, "client-reader", "ca", "/O=fleet/OU=reader/CN=dashboard", CLIENT_EXT),
    makeLeaf(dir, "client-admin", "ca", "/O=fleet/OU=admin/CN=operator", CLIENT_EXT),
    makeLeaf(dir, "client-nobody", "ca", "/O=fleet/CN=nobody", CLIENT_EXT),
    makeLeaf(dir, "stranger-admin", "other-ca", "/O=elsewhere/OU=admin/CN=stranger", CLIENT_EXT),
  ]);
  return {
    dir,
    ca: join(dir, "ca.crt"),
    otherCa: join(dir, "other-ca.crt"),
    server,
    client: { agent, reader, admin, nobody },
    strangerAdmin,
    read: (path) => readFile(path),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
