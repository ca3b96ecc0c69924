// The server's security state for its lifetime: the Authorizer with its tokens (those given in env/flags
// plus the token file's, which reloadTokens() reads again on SIGHUP), and the TLS material of both
// listeners. A token file that fails to parse on reload leaves the tokens in use as they were.

import { ConfigError, type RoleToken, type SecurityConfig, authenticationEnabled } from "../config/index.js";
import type { Log } from "../common/log.js";
import { Authorizer } from "./authorizer.js";
import { type ListenerTls, loadListenerTls } from "./tls-credentials.js";
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
      config.tls === undefined ? undefined : loadListenerTls(config.tls),
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

  /** Reads the token file again (SIGHUP). On failure logs an error naming the file and line and keeps the tokens. */
  async reloadTokens(): Promise<boolean> {
    const path = this.config.tokenFile;
    if (path === undefined) {
      this.log.warn({}, "no token file to reload (REGISTRY_TOKEN_FILE, --token-file); the tokens stay as they are");
      return false;
    }
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

  private static async readFile(path: string, log: Log): Promise<RoleToken[]> {
    const file = await readTokenFile(path);
    if (file.readableByOthers) {
      log.warn({ tokenFile: path }, `the token file ${path} is readable by other users, who could act as any role in it; chmod 600 it`);
    }
    return file.tokens;
  }
}
