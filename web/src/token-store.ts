// The reader token the page sends, kept in this tab's session storage only (never localStorage, never a
// cookie): closing the tab forgets it, and no other tab or site sees it.

const KEY = "agent-registry.reader-token";

export function readToken(): string | undefined {
  const token = sessionStorage.getItem(KEY);
  return token === null || token === "" ? undefined : token;
}

export function saveToken(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
}
