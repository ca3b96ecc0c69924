// The one logger interface of the server, the node daemon and the domain: pino's logger fits it, and
// `silentLog` is the default where none is given (tests, embedding).

export interface Log {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export const silentLog: Log = { debug() {}, info() {}, warn() {}, error() {} };
