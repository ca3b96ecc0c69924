// The server's security state for its lifetime: the Authorizer with its tokens (those given in env/flags
// plus the token file's), and the TLS material of both listeners; reload() reads the token file and the TLS
// files again (SIGHUP). A file that fails on reload leaves what is in use as it was, with an error logged.

import { ConfigError, type RoleToken, type SecurityConfig, authenticationEnabled } from "../config/index.js";
import type { Log } from "../common/log.js";
import { Authorizer } from "./authorizer.js";
import { ListenerTls } from "./tls-credentials.js";
import { readTokenFile } from "./token-file.js";
import { TokenSet } from "./token-set.js";

export class ServerSecurity {
  private constructor(
    private readonly config: SecurityConfig,
    private readonly log: Log,
    readonly authorizer: Authorizer,
    readonly tls: ListenerTls | undefined,
  ) {}

  /** Reads the token file and the TLS files; a ConfigError names the file (and line) at fault. */
  static async open(config: SecurityConfig, log: Log): Promise<ServerSecurity> {
    const [fileTokens, tls] = await Promise.all([
      config.tokenFile === undefined ? [] : ServerSecurity.readFile(config.tokenFile, log),
      config.tls === undefined ? undefined : ListenerTls.load(config.tls),
    ]);
    const tokens = new TokenSet([...config.tokens, ...fileTokens]);
    const enabled = authenticationEnabled(config);
    const authorizer = new Authorizer(tokens, { enabled, clientCertificates: config.tls?.clientCaFile !== undefined });
    const security = new ServerSecurity(config, log, authorizer, tls);
    if (enabled) {
      log.info(
        { tokens: tokens.size, roles: tokens.counts(), tokenFile: config.tokenFile, clientCertificates: config.tls?.clientCaFile !== undefined },
        `authentication on: ${tokens.size} tokens loaded${config.tls?.clientCaFile === undefined ? "" : "; client certificates required"}`,
      );
    }
    return security;
  }

  /**
   * Reads the token file and the TLS files again, those configured (SIGHUP); true if every one of them was
   * reloaded. Each outcome is logged.
   */
  async reload(): Promise<boolean> {
    if (this.config.tokenFile === undefined && this.tls === undefined) {
      this.log.warn({}, "nothing to reload on SIGHUP: no token file (REGISTRY_TOKEN_FILE) and no TLS (REGISTRY_TLS_CERT)");
      return false;
    }
    const [tokens, tls] = await Promise.all([this.reloadTokens(), this.reloadTls()]);
    return tokens && tls;
  }

  /** Reads the token file again. On failure logs an error naming the file and line and keeps the tokens. */
  private async reloadTokens(): Promise<boolean> {
    const path = this.config.tokenFile;
    if (path === undefined) return true;
    try {
      const tokens = new TokenSet([...this.config.tokens, ...(await ServerSecurity.readFile(path, this.log))]);
      this.authorizer.replaceTokens(tokens);
      this.log.info({ tokenFile: path, tokens: tokens.size, roles: tokens.counts() }, `token file reloaded: ${tokens.size} tokens loaded`);
      return true;
    } catch (error) {
      const problem = error instanceof ConfigError ? error.message : `cannot reload the token file ${path}: ${String(error)}`;
      this.log.error({ tokenFile: path }, `${problem}; the previous tokens stay in use`);
      return false;
    }
  }

  /**
   * Reads the TLS files again and serves them to new connections. On failure logs an error naming the file
   * and keeps the certificates in use; open connections keep theirs either way.
   */
  private async reloadTls(): Promise<boolean> {
    if (this.tls === undefined) return true;
    try {
      const served = await this.tls.reload();
      this.log.info({ ...served }, `TLS certificates reloaded: new connections get ${served.certFile} (${served.subject}, valid to ${served.validTo})`);
      return true;
    } catch (error) {
      const problem = error instanceof ConfigError ? error.message : `cannot reload the TLS files: ${String(error)}`;
      this.log.error({ certFile: this.config.tls?.certFile }, `${problem}; the certificates in use stay in use`);
      return false;
    }
  }

  private static async readFile(path: string, log: Log): Promise<RoleToken[]> {
    const file = await readTokenFile(path);
    if (file.readableByOthers) {
      log.warn({ tokenFile: path }, `the token file ${path} is readable by other users, who could act as any role in it; chmod 600 it`);
    }
    return file.tokens;
  }
}
