// Who may read the server's internals (the store's file path, the operating system's own error text) in
// an answer: an admin caller always, and anyone while the server listens on loopback only with
// authentication off (then only this machine can ask, and it may do anything anyway). Everyone else is
// told the problem ("the disk is full"); the details go to the log.

import { type ServerConfig, authenticationEnabled } from "../config/index.js";
import type { Caller } from "./authorizer.js";
import { isLoopback } from "./exposure-guard.js";

export class Disclosure {
  private constructor(private readonly open: boolean) {}

  static of(config: Pick<ServerConfig, "grpcListen" | "httpListen" | "security">): Disclosure {
    return new Disclosure(isLoopback(config.grpcListen) && isLoopback(config.httpListen) && !authenticationEnabled(config.security));
  }

  /** Whether answers to `caller` may carry details. */
  toCaller(caller: Caller | undefined): boolean {
    return this.open || caller?.role === "admin";
  }

  /** Whether the open endpoints (/readyz), which know no caller, may carry details. */
  get toAnyone(): boolean {
    return this.open;
  }
}
