// The fleet dashboard's files (web/, built by Vite into dist/web), read once at start-up and served from
// memory at / on the HTTP listener: index.html is never cached (it names this build's assets), assets with
// a content hash in their name are cached for a year. Not the page itself (web/src), not the RPCs it calls.

import { createHash } from "node:crypto";
import { access, readFile, readdir } from "node:fs/promises";
import { extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

export interface StaticFile {
  readonly body: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  readonly etag: string;
}

export interface DashboardFiles {
  /** The file for a request path ("/" is index.html); undefined for any other path. */
  lookup(path: string): StaticFile | undefined;
  /** Whether this installation has the page built (dist/web). */
  readonly built: boolean;
}

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

const YEAR_SECONDS = 365 * 24 * 3600;

// The page loads only its own files and calls only this origin; nothing may frame it.
const PAGE_POLICY = [
  "default-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

/**
 * Where the built page is, from the bundle (dist/bundle -> dist/web), the compiled server (dist/src/server
 * -> dist/web) or its TypeScript sources (src/server -> dist/web).
 */
export async function findDashboardDir(): Promise<string | undefined> {
  for (const candidate of ["../../dist/web/", "../../web/"]) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    // web/ itself (the sources) has an index.html too; the built one has assets/.
    if (await exists(join(dir, "index.html")) && await exists(join(dir, "assets"))) return dir;
  }
  return undefined;
}

export async function loadDashboard(dir: string | undefined): Promise<DashboardFiles> {
  if (dir === undefined) return { lookup: () => undefined, built: false };
  const files = new Map<string, StaticFile>();
  for (const path of await filesUnder(dir)) {
    const name = "/" + relative(dir, path).split(sep).join("/");
    const body = await readFile(path);
    const hashed = name.startsWith("/assets/");
    const headers: Record<string, string> = {
      "content-type": TYPES[extname(name).toLowerCase()] ?? "application/octet-stream",
      // no-cache: kept, but asked again (a 304 when unchanged), so a new build is seen on the next load.
      "cache-control": hashed ? `public, max-age=${YEAR_SECONDS}, immutable` : "no-cache",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    };
    if (name.endsWith(".html")) headers["content-security-policy"] = PAGE_POLICY;
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
    files.set(name, { body, headers: { ...headers, etag }, etag });
  }
  const index = files.get("/index.html");
  if (index !== undefined) files.set("/", index);
  return { lookup: (path) => files.get(path), built: index !== undefined };
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
