// The classic tutorial implementation of refresh tokens, as users copy it: Express 4 +
// jsonwebtoken, stateless, the refresh JWT in the request body, string secrets.
// KEY_MODE=keyobject wraps the same secrets once in createSecretKey: most of the tutorial's
// cost is jsonwebtoken turning string secrets into keys on every call.
import { createSecretKey, type KeyObject } from 'node:crypto'
import express from 'express'
import jwt from 'jsonwebtoken'

const accessSecretString = process.env.ACCESS_TOKEN_SECRET as string
const refreshSecretString = process.env.REFRESH_TOKEN_SECRET as string
const keyObjects = process.env.KEY_MODE === 'keyobject'
const accessSecret: string | KeyObject = keyObjects ? createSecretKey(Buffer.from(accessSecretString)) : accessSecretString
const refreshSecret: string | KeyObject = keyObjects ? createSecretKey(Buffer.from(refreshSecretString)) : refreshSecretString

const app = express()
app.use(express.json())

app.post('/token', (req, res) => {
  const refreshToken = req.body?.refreshToken
  if (refreshToken == null) return res.sendStatus(401)
  jwt.verify(refreshToken, refreshSecret, (err: unknown, user: unknown) => {
    if (err !== null) return res.sendStatus(403)
    const { sub, email } = user as { sub: string, email: string }
    const accessToken = jwt.sign({ sub, email }, accessSecret, { expiresIn: '10m' })
    const newRefreshToken = jwt.sign({ sub, email }, refreshSecret, { expiresIn: '7d' })
    res.json({ accessToken, refreshToken: newRefreshToken })
  })
})

/** Mints a refresh token the way the tutorial's login would. */
export function tutorialRefreshToken (secret: string): string {
  return jwt.sign({ sub: 'user-1', email: 'user@example.com' }, secret, { expiresIn: '7d' })
}

if (process.env.PORT !== undefined) {
  app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'))
}
