// Configuration, in one place: environment variables and command-line flags (flags win) become validated,
// typed configs for the server, the node daemon and the client commands, or a ConfigError whose message
// names the variable or flag and what it accepts. Every setting is a row of settings.ts; this file only
// gathers what the rest of the code uses.

export { type AgentConfig, type AgentFlags, AGENT_DEFAULTS, loadAgentConfig } from "./agent-config.js";
export { type ClientConfig, type ClientFlags, loadClientConfig } from "./client-config.js";
export { type ClientSecurity, type ClientSecurityFlags, type ClientTlsFiles, firstTlsSetting, loadClientSecurity } from "./client-security-config.js";
export { ConfigError } from "./config-error.js";
export { type DeregisterFlags, type DeregisterTarget, loadDeregisterTarget } from "./deregister-config.js";
export { DEFAULT_LIMITS, type LimitsConfig, loadLimitsConfig } from "./limits-config.js";
export { type ListenAddress, formatAddress, parseListenAddress } from "./listen-address.js";
export { type LogConfig, type LogFormat, type LogLevel, debugRequested, loadLogConfig } from "./log-config.js";
export {
  MIN_TOKEN_LENGTH,
  ROLES,
  type Role,
  type RoleToken,
  checkUnique,
  isRole,
  parseRoleToken,
  parseTokenLines,
  parseTokenList,
} from "./role-token.js";
export { NO_SECURITY, type SecurityConfig, type TlsFiles, authenticationEnabled, loadSecurityConfig } from "./security-config.js";
export type { FlagValue } from "./setting-reader.js";
export { type CommandName, type Setting, flagAndEnv, helpFor, shownDefault } from "./setting.js";
export { DEFAULTS, type FlagsOf, LIMIT_SETTINGS, type LimitSetting, SETTINGS, settingsOf } from "./settings.js";
export { type MigrateConfig, loadMigrateConfig } from "./migrate-config.js";
export { SERVER_DEFAULTS, type ServerConfig, type ServerFlags, type StoreKind, loadServerConfig } from "./server-config.js";
