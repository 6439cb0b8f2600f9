import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { Test } from 'tap'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

const CHROMIUM = '/usr/bin/chromium'
export const REFRESH_COOKIE = '__Secure-refresh_token'

/** For a browser test's options: skipped, saying why, where Debian's Chromium is not installed. */
export const needsChromium = { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)` }

/** A tiny static site on loopback: the app's pages, or an attacker's. */
export async function site (t: Test, host: string, pages: Record<string, string>): Promise<string> {
  const server: Server = createServer((req, res) => {
    const page = pages[req.url ?? '']
    res.writeHead(page === undefined ? 404 : 200, { 'content-type': 'text/html' }).end(page ?? 'not found')
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

export interface AppCall { status: number, body: unknown, requestId: string | null, retryAfter: string | null, cookieVisible: boolean }

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
      cookieVisible: (globalThis as unknown as { document: { cookie: string } }).document.cookie.includes('refresh')
    }
  }, [`${api}${path}`, body] as const)
}
