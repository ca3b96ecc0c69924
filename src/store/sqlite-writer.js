// The SQLite writer thread: it owns registry.db's write connection (WAL, synchronous=FULL), so that no
// fsync ever blocks the server's event loop. It runs what the store sends, one request one transaction, and
// knows no schema: the statements come from sqlite-store.ts. Plain JavaScript (type-checked through JSDoc),
// so that the same file runs from the source tree under the tests and from dist/.

import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

/** @typedef {{ readonly sql: string, readonly params: readonly unknown[] }} Statement */
/**
 * @typedef {{ readonly id: number, readonly open: true }
 *   | { readonly id: number, readonly statements: readonly Statement[] }
 *   | { readonly id: number, readonly close: true }} Request
 */

const port = parentPort;
if (port === null) throw new Error("sqlite-writer.js runs as a worker thread of the SQLite store");
const file = /** @type {{ file: string }} */ (workerData).file;

/** @type {Database.Database | undefined} */
let db;
/** @type {Map<string, Database.Statement>} */
const prepared = new Map();

/** @returns {Database.Database} */
function connection() {
  if (db !== undefined) return db;
  const opened = new Database(file, { fileMustExist: true });
  opened.pragma("journal_mode = WAL");
  // Every commit fsyncs the WAL: an acknowledged Register survives power loss, not only a crash.
  opened.pragma("synchronous = FULL");
  opened.pragma("busy_timeout = 5000");
  prepared.clear();
  db = opened;
  return opened;
}

/** @param {readonly Statement[]} statements */
function transaction(statements) {
  const target = connection();
  target.exec("BEGIN IMMEDIATE");
  try {
    for (const { sql, params } of statements) {
      let statement = prepared.get(sql);
      if (statement === undefined) {
        statement = target.prepare(sql);
        prepared.set(sql, statement);
      }
      statement.run(...params);
    }
    target.exec("COMMIT");
  } catch (error) {
    // After a failed write (a full or read-only disk) the next request starts on a fresh connection; the
    // caller gets this transaction's error, which says what went wrong.
    discard(target);
    throw error;
  }
}

/**
 * Drops a connection after a failed transaction: closing it rolls back whatever the transaction left.
 * @param {Database.Database} target
 */
function discard(target) {
  db = undefined;
  prepared.clear();
  target.close();
}

port.on("message", (/** @type {Request} */ request) => {
  try {
    if ("open" in request) {
      // What the connection ended up with, so the store can refuse a file system without WAL.
      const opened = connection();
      const journalMode = opened.pragma("journal_mode", { simple: true });
      const synchronous = opened.pragma("synchronous", { simple: true });
      port.postMessage({ id: request.id, ok: true, settings: { journalMode, synchronous } });
      return;
    }
    if ("statements" in request) transaction(request.statements);
    else {
      db?.close();
      db = undefined;
    }
    port.postMessage({ id: request.id, ok: true });
  } catch (error) {
    const { message, code } = /** @type {Error & { code?: string }} */ (error);
    port.postMessage({ id: request.id, ok: false, message, code });
  }
});
