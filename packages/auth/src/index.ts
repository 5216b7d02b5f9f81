import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import { ApiError, type Sender } from '@danmaku/model';
import { stripControlChars } from '@danmaku/protocol';

export const ROLES = ['viewer', 'streamer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling, from a verified token. */
export interface Principal extends Sender {
  role: Role;
  /** Rooms a streamer owns. */
  rooms: string[];
}

export interface TokenClaims {
  sub: string;
  name: string;
  role: Role;
  rooms?: string[];
}

export interface Auth {
  sign(claims: TokenClaims, expiresInSeconds?: number): string;
  /** Throws ApiError 401 with a code that says what is wrong with the token. */
  verify(token: string): Principal;
  /** Reads `Authorization: Bearer TOKEN`; null when the header is absent. */
  fromHeader(header: string | undefined): Principal | null;
}

function toPrincipal(payload: Record<string, unknown>): Principal {
  const { sub, name, role, rooms } = payload;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 64 || stripControlChars(sub) !== sub) {
    throw new ApiError(401, 'invalid_token', 'The token has no valid "sub" (user id) claim.');
  }
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw new ApiError(401, 'invalid_token', `The token's "role" must be one of ${ROLES.join(', ')}.`);
  }
  const roomList = Array.isArray(rooms) ? rooms.filter((r): r is string => typeof r === 'string') : [];
  // The name is shown to everyone in the room; a token signed elsewhere may carry anything.
  const clean = typeof name === 'string' ? stripControlChars(name).trim().slice(0, 32) : '';
  const display = clean.length > 0 ? clean : sub;
  return { id: sub, name: display, role: role as Role, rooms: roomList };
}

/** Verified tokens remembered per process; a client sends the same token with every request. */
const VERIFIED_MAX = 10_000;

export function createAuth(secret: string): Auth {
  const signer = createSigner({ key: secret, algorithm: 'HS256' });
  // fast-jwt's own cache spares the HMAC, not a SHA-256 of the token and the claims check, on
  // every request; `verified` below spares those too. Refusals are not remembered here.
  const verifier = createVerifier({ key: secret, algorithms: ['HS256'], cache: 10_000 });
  /** token -> its principal (frozen: shared by every request bearing it) and when it expires (ms). */
  const verified = new Map<string, { principal: Principal; expiresAt: number }>();

  const verify = (token: string): Principal => {
    const known = verified.get(token);
    if (known !== undefined) {
      if (known.expiresAt > Date.now()) return known.principal;
      verified.delete(token);
    }
    try {
      const payload = verifier(token) as Record<string, unknown>;
      const principal = toPrincipal(payload);
      Object.freeze(principal.rooms);
      Object.freeze(principal);
      // Oldest first out: a Map iterates in insertion order.
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
      verified.set(token, { principal, expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : Number.POSITIVE_INFINITY });
      return principal;
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (err instanceof TokenError && err.code === TokenError.codes.expired) {
        throw new ApiError(401, 'token_expired', 'The token has expired; get a new one.');
      }
      throw new ApiError(401, 'invalid_token', 'The token is not valid for this server.');
    }
  };

  return {
    sign(claims, expiresInSeconds = 24 * 3600) {
      const payload: Record<string, unknown> = { ...claims, exp: Math.floor(Date.now() / 1000) + expiresInSeconds };
      return signer(payload);
    },
    verify,
    fromHeader(header) {
      if (header === undefined) return null;
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match?.[1]) throw new ApiError(401, 'invalid_token', 'Authorization must be "Bearer TOKEN".');
      return verify(match[1]);
    },
  };
}

/** Streamers may act on the rooms they own; admins on every room. */
export function canModerate(principal: Pick<Sender, 'role' | 'rooms'>, roomId: string): boolean {
  return principal.role === 'admin' || (principal.role === 'streamer' && principal.rooms.includes(roomId));
}
