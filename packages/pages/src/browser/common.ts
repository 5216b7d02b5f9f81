/** What the pages share: calling the API, reading a token, finding elements. */

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A JSON call to the front; an error answer (API.md shape) becomes an ApiFailure. */
export async function api<T>(path: string, options: { method?: string; token?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method: options.method ?? 'GET',
    headers,
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  return readAnswer<T>(response);
}

/** A response's JSON; an error answer (API.md shape) becomes an ApiFailure. */
export async function readAnswer<T>(response: Response): Promise<T> {
  const answer = (await response.json().catch(() => ({}))) as T & { error?: { code: string; message: string } };
  if (!response.ok) throw new ApiFailure(response.status, answer.error?.code ?? 'http_error', answer.error?.message ?? `HTTP ${response.status}`);
  return answer;
}

export function describe(err: unknown): string {
  if (err instanceof ApiFailure) return `${err.message} (${err.code})`;
  if (err instanceof Error && 'code' in err) return `${err.message} (${String(err.code)})`;
  return err instanceof Error ? err.message : String(err);
}

export interface Claims {
  sub: string;
  name: string;
  role: string;
  exp?: number;
}

/** The token's payload, for display and the router's uid; the server is what verifies it. */
export function claimsOf(token: string): Claims | null {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes)) as Partial<Claims>;
    return typeof claims.sub === 'string' ? { sub: claims.sub, name: claims.name ?? claims.sub, role: claims.role ?? '?', exp: claims.exp } : null;
  } catch {
    return null;
  }
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`The page has no #${id}.`);
  return el as T;
}

/** The id in `/PREFIX/ID`, else `?param=ID`. */
export function idFromLocation(prefix: string, param: string): string | null {
  const match = new RegExp(`^/${prefix}/([^/]+)`).exec(location.pathname);
  if (match?.[1]) return decodeURIComponent(match[1]);
  return new URLSearchParams(location.search).get(param);
}

/** Unique enough per send; crypto.randomUUID needs a secure context, which plain-HTTP hosts are not. */
export function newClientMsgId(): string {
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}
