import createError from '@fastify/error'

// Stable codes: clients and tests match on `code` and status, never on message text.

export const InvalidCredentialsError = createError('AUTH_INVALID_CREDENTIALS', 'Invalid email or password', 401)
export const EmailTakenError = createError('AUTH_EMAIL_TAKEN', 'An account with this email already exists', 409)
export const InvalidEmailError = createError('AUTH_INVALID_EMAIL', 'Email address is not valid', 400)
/** A new password on the blocklist (src/password-policy.ts): the message says which rule, for the user. */
export const WeakPasswordError = createError('AUTH_WEAK_PASSWORD', '%s', 400)
export const RefreshInvalidError = createError('AUTH_REFRESH_INVALID', 'Refresh token is missing, invalid or expired', 401)
export const RefreshReusedError = createError('AUTH_REFRESH_REUSED', 'Refresh token was already used; the session has been revoked', 401)
export const RefreshSupersededError = createError('AUTH_REFRESH_SUPERSEDED', 'Refresh token was superseded by a newer refresh of this session, or by a new sign-in in this browser; retry with the current cookie', 409)
export const AccessTokenInvalidError = createError('AUTH_TOKEN_INVALID', 'Access token is missing, invalid or expired', 401)
export const SessionNotFoundError = createError('AUTH_SESSION_NOT_FOUND', 'No such session', 404)
export const RateLimitedError = createError('RATE_LIMITED', 'Too many requests, retry later', 429)
export const CsrfError = createError('AUTH_CSRF', 'Cross-site request refused', 403)
export const HeaderTooLargeError = createError('REQUEST_HEADER_TOO_LARGE', 'A request header is too large', 431)
export const StoreUnavailableError = createError('AUTH_STORE_UNAVAILABLE', 'Session store is unavailable, try again shortly', 503)
export const NotReadyError = createError('SERVICE_NOT_READY', 'Service is not ready', 503)
export const HashingBusyError = createError('SERVICE_BUSY', 'Too many sign-ins at once, retry shortly', 503)
/** Never seen by the client, which has gone: the status the access log shows for it (nginx's 499). */
export const ClientClosedError = createError('REQUEST_ABANDONED', 'The client closed the connection before the answer', 499)

export const MalformedRequestError = createError('REQUEST_MALFORMED', 'Request is not valid HTTP', 400)
export const RequestTimeoutError = createError('REQUEST_TIMEOUT', 'Request was not received in time', 408)
export const ExpectationFailedError = createError('REQUEST_EXPECTATION_FAILED', 'The only expectation supported is 100-continue', 417)
export const MalformedUrlError = createError('REQUEST_MALFORMED_URL', 'Request URL is not valid', 400)
export const UrlTooLongError = createError('REQUEST_URL_TOO_LONG', 'A path segment of the request URL is too long', 414)
export const ValidationError = createError('REQUEST_VALIDATION', '%s', 400)
export const MalformedBodyError = createError('REQUEST_MALFORMED_BODY', 'Request body is not valid JSON', 400)
export const NotUtf8BodyError = createError('REQUEST_MALFORMED_BODY', 'Request body is not valid JSON: JSON text is UTF-8, and this body holds bytes that are not', 400)
export const BodyTooLargeError = createError('REQUEST_BODY_TOO_LARGE', 'Request body is too large', 413)
export const UnsupportedMediaTypeError = createError('REQUEST_UNSUPPORTED_MEDIA_TYPE', 'Content type is not supported; send application/json', 415)
export const UnsupportedEncodingError = createError('REQUEST_UNSUPPORTED_ENCODING', 'Content encoding is not supported; send the body uncompressed', 415)
export const NotFoundError = createError('NOT_FOUND', 'Route not found', 404)
export const MethodNotAllowedError = createError('METHOD_NOT_ALLOWED', 'Method not allowed here; this path takes %s', 405)
export const InternalError = createError('INTERNAL_ERROR', 'Internal server error', 500)
