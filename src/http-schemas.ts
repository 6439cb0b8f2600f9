import { Type, type Static } from 'typebox'
import { MAX_EMAIL_LENGTH } from './email.js'

// The HTTP contract, one schema per shape: validation, serialization and documentation come from here.

export const MIN_PASSWORD_LENGTH = 12
export const MAX_PASSWORD_LENGTH = 128
/** Largest body any route accepts; well above the largest valid credentials, far below anything abusive. */
export const AUTH_BODY_LIMIT_BYTES = 16 * 1024

export const ErrorResponse = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String({ description: 'Stable: match on this, not on the message' }),
  error: Type.String(),
  message: Type.String()
}, { description: 'An error' })

export const Credentials = Type.Object({
  // Length bounds on the raw input; the address itself is checked after normalisation (src/email.ts).
  email: Type.String({ minLength: 1, maxLength: MAX_EMAIL_LENGTH + 64 }),
  password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH })
}, { additionalProperties: false })

export const Registration = Type.Object({
  email: Type.String({ minLength: 1, maxLength: MAX_EMAIL_LENGTH + 64 }),
  password: Type.String({ minLength: MIN_PASSWORD_LENGTH, maxLength: MAX_PASSWORD_LENGTH })
}, { additionalProperties: false })

export const UserResponse = Type.Object({
  id: Type.String(),
  email: Type.String()
})

export const TokenResponse = Type.Object({
  accessToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  /** Seconds until the access token expires. */
  expiresIn: Type.Integer()
})

export const StatusResponse = Type.Object({
  status: Type.String()
})

export type CredentialsBody = Static<typeof Credentials>

export const SessionList = Type.Object({
  sessions: Type.Array(Type.Object({
    id: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    lastUsedAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.String({ format: 'date-time' }),
    userAgent: Type.String(),
    ip: Type.String(),
    /** True for the session the calling access token belongs to. */
    current: Type.Boolean()
  }))
})

export const SessionParams = Type.Object({
  // A family id: 128 bits, base64url.
  id: Type.String({ pattern: '^[A-Za-z0-9_-]{22}$' })
})

export const AccountDeletion = Type.Object({
  password: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH })
}, { additionalProperties: false })

export const PasswordChange = Type.Object({
  currentPassword: Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH }),
  newPassword: Type.String({ minLength: MIN_PASSWORD_LENGTH, maxLength: MAX_PASSWORD_LENGTH })
}, { additionalProperties: false })
