import { existsSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { buildApp, PASSWORD, uniqueEmail } from './app.js'

const CHROMIUM = '/usr/bin/chromium'
export const REFRESH_COOKIE = '__Secure-refresh_token'

/**
 * A browser test's options: skipped, saying why, where Debian's Chromium is not installed. A new object for each test:
 * tap's --grep writes `skip` into the options of every test it filters out, and a shared object would skip the rest.
 */
export function needsChromium (): { skip: string | false } {
  return { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }
}

/** Answers `req` with its page of `pages` (by path: a query is the page's to read; `.js`, a module) if it has one. */
export function servePage (pages: Record<string, string>, req: IncomingMessage, res: ServerResponse): boolean {
  const path = new URL(req.url ?? '/', 'http://site').pathname
  const page = pages[path]
  if (page === undefined) return false
  res.writeHead(200, { 'content-type': path.endsWith('.js') ? 'text/javascript' : 'text/html' }).end(page)
  return true
}

/**
 * What a site's proxy in front of the service does: passes `req` on to the service at `service` as `path` (with
 * `headers`), and its answer back, once `answered` resolves (a network slow to bring it).
 */
export function forward (req: IncomingMessage, res: ServerResponse, service: URL, path: string,
  { headers = req.headers, answered = async () => {} }: { headers?: IncomingHttpHeaders, answered?: () => Promise<void> } = {}): void {
  const upstream = request({ host: service.hostname, port: service.port, method: req.method, path, headers }, (answer) => {
    answered().then(() => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    }, () => res.destroy())
  })
  upstream.on('error', () => res.destroy())
  req.pipe(upstream)
}

/** A tiny static site on loopback: the app's pages, or an attacker's. */
export async function site (t: Test, host: string, pages: Record<string, string>): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (!servePage(pages, req, res)) res.writeHead(404, { 'content-type': 'text/html' }).end('not found')
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  t.teardown(() => server.close())
  return `http://${host}:${(server.address() as { port: number }).port}`
}

/** Headless Chromium, closed when `t` ends. */
export async function launchBrowser (t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  t.teardown(() => browser.close())
  return browser
}

/** The refresh cookie as the browser holds it. All cookies, not cookies(api): that filters by the URL's path, and this one lives on /auth. */
export async function refreshCookieIn (context: BrowserContext) {
  return (await context.cookies()).find((c) => c.name === REFRESH_COOKIE)
}

/**
 * A browser app and the service it calls: the service listening on 127.0.0.1 with the app's origin (a page served from
 * `appHost`) in ALLOWED_ORIGINS and `env` on top, an account registered, and a browser whose tabs `openApp` opens on
 * the app's page.
 */
export async function browserApp (t: Test, options: { appHost?: string, env?: Record<string, string> } = {}): Promise<{
  auth: FastifyInstance, api: string, email: string, context: BrowserContext, openApp: () => Promise<Page>
}> {
  const appOrigin = await site(t, options.appHost ?? '127.0.0.1', { '/app.html': '<!doctype html><title>app</title>' })
  const auth = await buildApp(t, { env: { ALLOWED_ORIGINS: appOrigin, ...options.env } })
  const api = await auth.listen({ port: 0, host: '127.0.0.1' })
  const email = uniqueEmail()
  await auth.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const context = await (await launchBrowser(t)).newContext()
  const openApp = async (): Promise<Page> => {
    const page = await context.newPage()
    await page.goto(`${appOrigin}/app.html`)
    return page
  }
  return { auth, api, email, context, openApp }
}

export interface AppCall { status: number, body: unknown, requestId: string | null, retryAfter: string | null, challenge: string | null, allow: string | null, cookieVisible: boolean }

/** The app's own call from `page`: fetch(api + path, { method: 'POST', credentials: 'include' }), a JSON body if given. */
export async function appCall (page: Page, api: string, path: string, body?: object): Promise<AppCall> {
  return await page.evaluate(async ([url, payload]) => {
    const res = await fetch(url as string, {
      method: 'POST',
      credentials: 'include',
      headers: payload === undefined ? {} : { 'content-type': 'application/json' },
      body: payload === undefined ? undefined : JSON.stringify(payload)
    })
    return {
      status: res.status,
      body: await res.json().catch(() => null),
      requestId: res.headers.get('x-request-id'),
      retryAfter: res.headers.get('retry-after'),
      challenge: res.headers.get('www-authenticate'),
      allow: res.headers.get('allow'),
      cookieVisible: (globalThis as unknown as { document: { cookie: string } }).document.cookie.includes('refresh')
    }
  }, [`${api}${path}`, body] as const)
}
