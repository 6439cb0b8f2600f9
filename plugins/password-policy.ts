import fp from 'fastify-plugin'
import { PasswordPolicy } from '../src/password-policy.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Refuses a new password an attacker would try first (registration, password change). */
    passwordPolicy: PasswordPolicy
  }
}

// Built at start: the list's 49,000 entries take about 60 ms to load, which no registration should wait for.
export default fp(async function passwordPolicyPlugin (fastify) {
  fastify.decorate('passwordPolicy', new PasswordPolicy())
}, { name: 'password-policy', fastify: '5.x' })
