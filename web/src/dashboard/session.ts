// The merchandiser's pasted token, kept for the browser tab only (session storage): closing
// the tab signs out.
const key = "storefront.dashboard.token";

export function savedToken(): string {
  return sessionStorage.getItem(key) ?? "";
}

export function saveToken(token: string): void {
  sessionStorage.setItem(key, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(key);
}
