import { readFile } from 'node:fs/promises'
import type { BrowserContext, Page } from 'playwright-core'
import ts from 'typescript'
import type { AuthClient } from '../../examples/browser-client.js'
import { PASSWORD } from './app.js'

// The client as an app ships it: examples/browser-client.ts compiled to one ES module, which the app's page loads and
// makes its client with, the service's base URL read from the page's query (?api=).
const CLIENT_MODULE = ts.transpileModule(await readFile(new URL('../../examples/browser-client.ts', import.meta.url), 'utf8'), {
  compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext }
}).outputText
export const APP_PAGES = {
  '/browser-client.js': CLIENT_MODULE,
  '/app.html': `<!doctype html><title>app</title><script type="module">
    import { AuthClient } from './browser-client.js'
    globalThis.api = new URLSearchParams(location.search).get('api') ?? ''
    globalThis.signedOut = 0
    globalThis.signedIn = 0
    globalThis.auth = new AuthClient({
      baseUrl: globalThis.api,
      onSignedOut: () => { globalThis.signedOut++ },
      onSignedIn: () => { globalThis.signedIn++ }
    })
    globalThis.attempt = async (call) => { try { return await call } catch (error) { return error.code ?? String(error) } }
  </script>`
}

/**
 * What a tab of the app holds: where it reaches the service, its client, how often it was told its session ended or
 * another tab signed it in, and what the app's calls get.
 */
export interface InPage {
  /** The client's baseUrl, from the page's query (?api=): '' when the service is on the page's origin. */
  api: string
  auth: AuthClient
  signedOut: number
  signedIn: number
  /** The call's value, or the code of the AuthError it threw. */
  attempt: <R>(call: Promise<R>) => Promise<R | string>
}

/** A tab of the app at `url`, once its client is made (its page's query names the service: ?api=). */
export async function openAppTab (context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(url)
  await page.waitForFunction(() => 'auth' in globalThis)
  return page
}

export const signIn = async (page: Page, email: string) => await page.evaluate(async ([email, password]) => {
  const tab = globalThis as unknown as InPage
  return await tab.attempt(tab.auth.signIn(email, password).then(() => 'signed in'))
}, [email, PASSWORD] as const)
export const signOut = async (page: Page, everywhere = false) => await page.evaluate(async (everywhere) => {
  const tab = globalThis as unknown as InPage
  return await tab.attempt((everywhere ? tab.auth.signOutEverywhere() : tab.auth.signOut()).then(() => 'signed out'))
}, everywhere)
export const restore = async (page: Page) => await page.evaluate(async () => {
  const tab = globalThis as unknown as InPage
  return await tab.attempt(tab.auth.restore())
})
/** The app's call of a route of the service through the client: its status, and the email in its body if any. */
export const call = async (page: Page, path = '/me') => await page.evaluate(async (path) => {
  const response = await (globalThis as unknown as InPage).auth.fetch(path)
  return { status: response.status, email: (await response.json() as { email?: string }).email }
}, path)
export const sessions = async (page: Page) => await page.evaluate(async () => {
  const response = await (globalThis as unknown as InPage).auth.fetch('/auth/sessions')
  return (await response.json() as { sessions: unknown[] }).sessions.length
})
/** The access token the tab's client gives the app's next call. */
export const token = async (page: Page) => await page.evaluate(async () => {
  const tab = globalThis as unknown as InPage
  return await tab.attempt(tab.auth.accessToken())
})
export const state = async (page: Page) => await page.evaluate(() => {
  const tab = globalThis as unknown as InPage
  return { signedIn: tab.auth.signedIn, signedOut: tab.signedOut }
})
/** How often the tab's app was told another tab signed it in. */
export const toldSignedIn = async (page: Page) => await page.evaluate(() => (globalThis as unknown as InPage).signedIn)
/** The context's pages without Web Locks, as in a browser that has none (Safari before 15.4). */
export async function withoutWebLocks (context: BrowserContext): Promise<void> {
  await context.addInitScript({ content: 'delete Navigator.prototype.locks' })
}

/**
 * Listens in `page` to what the app's tabs tell each other; returns how many messages it has heard. Its channel is
 * made after the client's, so the client has heard each message before it does (HTML: BroadcastChannel).
 */
export async function listen (page: Page): Promise<() => Promise<number>> {
  await page.evaluate(() => {
    const tab = globalThis as unknown as InPage & { heard: number }
    tab.heard = 0
    new BroadcastChannel(`auth-client:${tab.api}`).onmessage = () => { tab.heard++ }
  })
  return async () => await page.evaluate(() => (globalThis as unknown as { heard: number }).heard)
}
