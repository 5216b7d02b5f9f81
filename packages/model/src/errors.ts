/**
 * The error shape of API.md: `{ error: { code, message } }`. Thrown anywhere on a request path;
 * the HTTP layer and the socket layer both turn it into that shape.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds, for 429 and 503 (`Retry-After`). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): { error: { code: string; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export const unavailable = (what: string, retryAfter = 1): ApiError =>
  new ApiError(503, `${what}_unavailable`, `The ${what} is unavailable right now; try again shortly.`, retryAfter);
