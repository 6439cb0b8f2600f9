import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { buildApp, capturedLogs, login, PASSWORD, refresh, registerAndLogin, setCookies, uniqueEmail, uniquePrefix, type StoreKind } from '../helpers/app.js'

const loginAs = (app: Awaited<ReturnType<typeof buildApp>>, email: string, password: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, headers })

t.test('40 failed logins from one address, alternating between two instances, end in 429 with Retry-After for that address; the right password works after the window', async (t) => {
  const prefix = uniquePrefix()
  const env = { RATE_LIMIT_LOGIN_ACCOUNT_IP: '10/2', RATE_LIMIT_LOGIN_IP: '30/2' }
  const a = await buildApp(t, { prefix, env })
  const b = await buildApp(t, { prefix, env })
  const email = uniqueEmail()
  await a.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })

  const statuses: number[] = []
  let last
  for (let i = 0; i < 40; i++) {
    last = await loginAs(i % 2 === 0 ? a : b, email, `wrong password ${i}`)
    statuses.push(last.statusCode)
  }
  t.same(statuses.slice(0, 10), Array(10).fill(401), 'the first 10 failures, counted across both instances, are 401s')
  t.same(statuses.slice(10), Array(30).fill(429), 'then 429, on both instances')
  t.match(last?.json(), { statusCode: 429, code: 'RATE_LIMITED' })
  t.match(last?.headers['retry-after'], /^[12]$/, 'Retry-After says when')
  t.equal((await loginAs(a, email, PASSWORD)).statusCode, 429, 'even the right password waits out the window, from that address')

  await sleep(2100)
  t.equal((await loginAs(b, email, PASSWORD)).statusCode, 200, 'after the window the right password works')
})

/** A registered account on an app with these login failure limits; `from` logs in to it from an address. */
async function accountLimitedTo (t: Parameters<typeof buildApp>[0], perAddress: string, perAccount: string) {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: perAddress, RATE_LIMIT_LOGIN_ACCOUNT: perAccount } })
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  return (remoteAddress: string, password: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress })
}

t.test('an attacker guessing from one address cannot lock the account\'s owner out', async (t) => {
  const from = await accountLimitedTo(t, '5/60', '20/60')
  const attacker = []
  for (let i = 0; i < 8; i++) attacker.push((await from('203.0.113.66', `guess number ${i}`)).statusCode)
  t.same(attacker, [401, 401, 401, 401, 401, 429, 429, 429], 'the attacker\'s address is refused after 5 failures')
  t.equal((await from('203.0.113.66', PASSWORD)).statusCode, 429, 'even with the right password, from there')
  t.equal((await from('198.51.100.7', PASSWORD)).statusCode, 200, 'the owner, from their own address, signs in')
})

t.test('guesses spread over many addresses add up to the account\'s limit, which then holds for every address', async (t) => {
  const from = await accountLimitedTo(t, '5/60', '12/60')
  const statuses = []
  for (let i = 0; i < 14; i++) statuses.push((await from(`203.0.113.${i % 4}`, `guess number ${i}`)).statusCode)
  t.same(statuses, [...Array(12).fill(401), 429, 429], 'four addresses, three guesses each under their own limit: 12 failures, then 429')
  const owner = await from('198.51.100.7', PASSWORD)
  t.equal(owner.statusCode, 429, 'now every address waits out the window')
  t.ok(Number(owner.headers['retry-after']) > 0, 'and is told how long')
})

t.test('an address held by its own limit and the account\'s is told to wait for the later of the two', async (t) => {
  const from = await accountLimitedTo(t, '2/60', '3/900')
  for (let i = 0; i < 2; i++) t.equal((await from('203.0.113.66', `guess number ${i}`)).statusCode, 401)
  const own = await from('203.0.113.66', 'guess number 2')
  t.equal(own.statusCode, 429)
  t.ok(Number(own.headers['retry-after']) > 55 && Number(own.headers['retry-after']) <= 60, `its own limit: its 60 s window (${own.headers['retry-after']})`)
  t.equal((await from('198.51.100.7', 'guess number 3')).statusCode, 401, 'a third failure, elsewhere, brings the account to its limit')
  const both = await from('203.0.113.66', PASSWORD)
  t.equal(both.statusCode, 429)
  t.ok(Number(both.headers['retry-after']) > 890, `the account's 900 s, not the address's 60 s, after which it would be refused again (${both.headers['retry-after']})`)
})

t.test('a successful login resets the failure counters of the account and of its address', async (t) => {
  const from = await accountLimitedTo(t, '5/60', '6/60')
  for (let i = 0; i < 4; i++) t.equal((await from('127.0.0.1', 'wrong password!')).statusCode, 401)
  t.equal((await from('127.0.0.1', PASSWORD)).statusCode, 200)
  for (let i = 0; i < 4; i++) t.equal((await from('127.0.0.1', 'wrong password!')).statusCode, 401, `failure ${i + 1} after the reset`)
})

t.test('the owner\'s successful login resets the account\'s count of guesses made elsewhere, never the guessing address\'s', async (t) => {
  const from = await accountLimitedTo(t, '5/60', '6/60')
  for (let i = 0; i < 4; i++) t.equal((await from('203.0.113.66', `guess number ${i}`)).statusCode, 401)
  t.equal((await from('198.51.100.7', PASSWORD)).statusCode, 200, 'the owner signs in: 4 failures on the account, none from their address')
  const owner = []
  for (let i = 0; i < 4; i++) owner.push((await from('198.51.100.7', 'wrong password!')).statusCode)
  t.same(owner, [401, 401, 401, 401], 'the account\'s limit (6) counts from the owner\'s login: 4 + 4 would have passed it')
  const attacker = []
  for (let i = 0; i < 2; i++) attacker.push((await from('203.0.113.66', `guess again ${i}`)).statusCode)
  t.same(attacker, [401, 429], 'the guessing address keeps its 4 failures: its 5th is its last')
})

/**
 * A registered account on an app (`store`) with these login failure limits; `from` logs in to it from an address,
 * with a Cookie header if given; `deviceOf` is the device cookie a sign-in set, as a Cookie header pair.
 */
async function accountWithDevices (t: Parameters<typeof buildApp>[0], store: StoreKind, perAddress: string, perAccount: string) {
  const app = await buildApp(t, { store, env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: perAddress, RATE_LIMIT_LOGIN_ACCOUNT: perAccount } })
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const from = (remoteAddress: string, password: string, cookie?: string, as = email) =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email: as, password }, remoteAddress, headers: cookie === undefined ? {} : { cookie } })
  const deviceOf = (res: { headers: { 'set-cookie'?: string | string[] } }): string =>
    setCookies(res).find((c) => c.startsWith(`${DEVICE_COOKIE}=`))?.split(';')[0] ?? 'no device cookie'
  return { app, from, deviceOf }
}
const DEVICE_COOKIE = '__Secure-refresh_token_device'

for (const store of ['redis', 'memory'] as const) {
  t.test(`device cookies (${store}): guesses from many addresses lock the account for every client but the browsers its owner signed in from`, async (t) => {
    const { from, deviceOf } = await accountWithDevices(t, store, '5/60', '6/60')
    const signedIn = await from('198.51.100.7', PASSWORD)
    t.equal(signedIn.statusCode, 200, 'the owner signs in at home')
    const statuses = []
    for (let i = 0; i < 7; i++) statuses.push((await from(`203.0.113.${i % 3}`, `guess number ${i}`)).statusCode)
    t.same(statuses, [...Array(6).fill(401), 429], 'guesses from three addresses reach the account\'s limit')
    t.equal((await from('198.51.100.7', PASSWORD)).statusCode, 429, 'from then on the right password waits, from any browser not known')
    const known = await from('192.0.2.50', PASSWORD, deviceOf(signedIn))
    t.equal(known.statusCode, 200, 'but the owner\'s browser signs in, from any address')
    t.not(deviceOf(known), deviceOf(signedIn), 'and is given a new device cookie')
    t.equal((await from('192.0.2.50', PASSWORD, deviceOf(known))).statusCode, 200, 'with which it signs in again')
    t.equal((await from('203.0.113.9', 'one more guess')).statusCode, 429, 'which gives the guessers no new budget: the account stays locked to them')
  })

  t.test(`device cookies (${store}): a known browser's failures are limited by themselves, and count toward no other client's limit`, async (t) => {
    const { from, deviceOf } = await accountWithDevices(t, store, '3/60', '3/60')
    const device = deviceOf(await from('198.51.100.7', PASSWORD))
    const statuses = []
    for (let i = 0; i < 4; i++) statuses.push((await from('198.51.100.7', 'wrong password!', device)).statusCode)
    t.same(statuses, [401, 401, 401, 429], 'three wrong passwords in the known browser, then 429')
    const locked = await from('198.51.100.7', PASSWORD, device)
    t.equal(locked.statusCode, 429, 'for the right password too, in that browser')
    t.ok(Number(locked.headers['retry-after']) > 0, 'which is told how long')
    // At 3/60 per address and per account, the browser's three failures would have locked both.
    t.equal((await from('198.51.100.7', PASSWORD)).statusCode, 200, 'a browser not known, at the same address, signs in')
  })

  t.test(`device cookies (${store}): a sign-in gives the browser a new device id, and leaves the failures of the cookie it replaces`, async (t) => {
    const { from, deviceOf } = await accountWithDevices(t, store, '3/60', '100/60')
    const first = deviceOf(await from('198.51.100.7', PASSWORD))
    for (let i = 0; i < 2; i++) await from('198.51.100.7', 'wrong password!', first)
    const second = deviceOf(await from('198.51.100.7', PASSWORD, first))
    const [replaced, renewed] = [[] as number[], [] as number[]]
    for (let i = 0; i < 2; i++) replaced.push((await from('198.51.100.7', 'wrong password!', first)).statusCode)
    t.same(replaced, [401, 429], 'a copy of the replaced cookie keeps its two failures: its third is its last')
    for (let i = 0; i < 3; i++) renewed.push((await from('198.51.100.7', 'wrong password!', second)).statusCode)
    t.same(renewed, [401, 401, 401], 'the new one starts with none')
  })

  t.test(`device cookies (${store}): a forged, altered or another account's device cookie is no device cookie`, async (t) => {
    const { app, from, deviceOf } = await accountWithDevices(t, store, '100/60', '2/60')
    const own = deviceOf(await from('198.51.100.7', PASSWORD))
    const other = await registerAndLogin(app)
    const othersDevice = deviceOf(await from('198.51.100.8', PASSWORD, undefined, other.email))
    for (let i = 0; i < 2; i++) await from(`203.0.113.${i}`, `guess number ${i}`)
    const [name, value] = own.split('=') as [string, string]
    const [userId, deviceId, tag] = value.split('.') as [string, string, string]
    const flipLast = (s: string) => s.slice(0, -1) + (s.endsWith('A') ? 'B' : 'A')
    const presented = {
      'another account\'s': othersDevice,
      'with its tag altered': `${name}=${userId}.${deviceId}.${flipLast(tag)}`,
      'with another device id': `${name}=${userId}.${flipLast(deviceId)}.${tag}`,
      'naming this account with another\'s tag': `${name}=${userId}.${othersDevice.split('.').slice(1).join('.')}`,
      'under another name': `__Secure-device=${value}`
    }
    for (const [what, cookie] of Object.entries(presented)) {
      t.equal((await from('198.51.100.7', PASSWORD, cookie)).statusCode, 429, `${what}: the locked account's limit holds`)
    }
    t.equal((await from('198.51.100.7', PASSWORD, `${othersDevice}; ${own}`)).statusCode, 200, 'the genuine one beside a planted one is known')
  })
}

t.test('device cookies: one instance\'s is known to every other, which count its failures together', async (t) => {
  const prefix = uniquePrefix()
  const env = { RATE_LIMIT_LOGIN_ACCOUNT_IP: '3/60', RATE_LIMIT_LOGIN_ACCOUNT: '2/60' }
  const [a, b] = [await buildApp(t, { prefix, env }), await buildApp(t, { prefix, env })]
  const email = uniqueEmail()
  await a.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const on = (app: typeof a, password: string, cookie?: string) =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: '198.51.100.7', headers: cookie === undefined ? {} : { cookie } })
  const deviceOf = (res: Awaited<ReturnType<typeof on>>) => setCookies(res).find((c) => c.startsWith(`${DEVICE_COOKIE}=`))?.split(';')[0] ?? 'none'
  const device = deviceOf(await on(a, PASSWORD))
  for (let i = 0; i < 2; i++) await b.inject({ method: 'POST', url: '/auth/login', payload: { email, password: `guess ${i}` }, remoteAddress: `203.0.113.${i}` })
  t.equal((await on(b, PASSWORD)).statusCode, 429, 'guesses on one instance lock the account on it')
  const signedIn = await on(b, PASSWORD, device)
  t.equal(signedIn.statusCode, 200, 'where the browser known to the other signs in')
  const statuses = []
  for (const app of [a, b, a, b]) statuses.push((await on(app, 'wrong password!', deviceOf(signedIn))).statusCode)
  t.same(statuses, [401, 401, 401, 429], 'its failures on either instance count toward one limit')
})

t.test('device cookies: a browser two accounts signed in from stays known to both', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '100/60', RATE_LIMIT_LOGIN_ACCOUNT: '2/60' } })
  const emails = [uniqueEmail(), uniqueEmail()]
  for (const email of emails) await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const as = (email: string, password: string, remoteAddress: string, cookie = '') =>
    app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress, headers: { cookie } })
  let cookie = ''
  for (const email of emails) {
    cookie = setCookies(await as(email, PASSWORD, '198.51.100.7', cookie)).find((c) => c.startsWith(`${DEVICE_COOKIE}=`))?.split(';')[0] ?? 'none'
  }
  for (const email of emails) for (let i = 0; i < 2; i++) await as(email, `guess number ${i}`, `203.0.113.${i}`)
  const statuses = []
  for (const email of emails) statuses.push((await as(email, PASSWORD, '198.51.100.7')).statusCode, (await as(email, PASSWORD, '198.51.100.7', cookie)).statusCode)
  t.same(statuses, [429, 200, 429, 200], 'both accounts locked to unknown browsers; the family\'s computer signs in to each')
})

t.test('unknown emails are limited exactly like real ones (no existence oracle)', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '3/60' } })
  const statuses = []
  for (let i = 0; i < 5; i++) statuses.push((await loginAs(app, 'nobody-here@example.com', 'wrong password!')).statusCode)
  t.same(statuses, [401, 401, 401, 429, 429])
})

t.test('per IP: spoofed X-Forwarded-For does not reset the counter when the proxy is not trusted', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_IP: '5/60', TRUST_PROXY: 'false' } })
  const statuses = []
  for (let i = 0; i < 8; i++) {
    statuses.push((await loginAs(app, uniqueEmail(), 'wrong password!', { 'x-forwarded-for': `198.51.100.${i}` })).statusCode)
  }
  t.same(statuses, [401, 401, 401, 401, 401, 429, 429, 429])
})

t.test('per IP: a request forwarded by an address TRUST_PROXY does not trust is said once, naming that address, which every client behind it is counted as', async (t) => {
  const warnings = async (trust: string, requests: Array<Record<string, string>>, exempt = '') => {
    const logs = capturedLogs()
    const app = await buildApp(t, { env: { TRUST_PROXY: trust, RATE_LIMIT_EXEMPT: exempt, LOG_LEVEL: 'warn' }, logStream: logs.stream })
    for (const headers of requests) await loginAs(app, uniqueEmail(), 'wrong password!', headers)
    return logs.lines().filter((line) => /X-Forwarded-For/.test(line.msg))
  }
  const forwarded = { 'x-forwarded-for': '198.51.100.7' }
  const said = await warnings('false', [{}, forwarded, { 'x-forwarded-for': '198.51.100.8' }, forwarded])
  t.equal(said.length, 1, 'TRUST_PROXY=false (the default): said once, for three forwarded sign-ins')
  t.match(said[0], { level: 40, forwarder: '127.0.0.1', msg: /^a request names its client in X-Forwarded-For, sent by an address TRUST_PROXY does not trust: the rate limits count that address as the client\. .*set TRUST_PROXY to the proxy's address or range/ },
    'at warn, with the address counted and what to set')
  t.equal((await warnings('10.0.0.0/8', [forwarded]))[0]?.forwarder, '127.0.0.1', 'TRUST_PROXY listing other addresses than the proxy\'s: said')
  t.match((await warnings('false', [forwarded], '127.0.0.0/8'))[0]?.msg, /count that address as the client, and RATE_LIMIT_EXEMPT lists it, so no client behind it is counted by any limit per address\. Behind/,
    'the proxy in RATE_LIMIT_EXEMPT: said that its clients are counted by none')
  t.notMatch((await warnings('false', [forwarded], '198.51.100.7'))[0]?.msg, /RATE_LIMIT_EXEMPT/, 'the client it names listed, not the proxy: the proxy is counted, as without it')
  t.same(await warnings('false', [{}, {}]), [], 'no X-Forwarded-For: nothing said')
  t.same(await warnings('127.0.0.1', [forwarded]), [], 'the proxy listed: nothing said')
  t.same(await warnings('1', [forwarded]), [], 'a hop count, which trusts the nearest proxy: nothing said')
})

t.test('per IP: behind a trusted proxy, X-Forwarded-For counts each client separately', async (t) => {
  for (const trust of ['127.0.0.1', '127.0.0.0/8', '1']) {
    const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_IP: '5/60', TRUST_PROXY: trust } })
    const send = (client: string) => loginAs(app, uniqueEmail(), 'wrong password!', { 'x-forwarded-for': client })
    const first = []
    for (let i = 0; i < 6; i++) first.push((await send('198.51.100.7')).statusCode)
    t.same(first, [401, 401, 401, 401, 401, 429], `TRUST_PROXY=${trust}: one client is limited`)
    t.equal((await send('198.51.100.8')).statusCode, 401, `TRUST_PROXY=${trust}: another client behind the proxy is not`)
    t.equal((await send('203.0.113.1, 198.51.100.7')).statusCode, 429, 'the client a trusted proxy saw is what counts, not what the client claims')
  }
})

t.test('per IP: a proxy that writes each client\'s port beside its address (Azure Application Gateway) counts the client, not its connections', async (t) => {
  const prefix = uniquePrefix()
  const app = await buildApp(t, { prefix, env: { RATE_LIMIT_LOGIN_IP: '5/60', RATE_LIMIT_REFRESH_IP: '3/60', TRUST_PROXY: '127.0.0.1' } })
  const statuses = []
  for (let port = 50_000; port < 50_006; port++) {
    statuses.push((await loginAs(app, uniqueEmail(), 'wrong password!', { 'x-forwarded-for': `198.51.100.7:${port}` })).statusCode)
  }
  t.same(statuses, [401, 401, 401, 401, 401, 429], 'sign-ins: a new port each time is still the one client')
  t.equal((await loginAs(app, uniqueEmail(), 'wrong password!', { 'x-forwarded-for': '[2001:db8:7::1]:50000' })).statusCode, 401, 'another client, IPv6 in brackets')
  const refreshes = []
  for (let port = 50_000; port < 50_004; port++) {
    refreshes.push((await app.inject({ method: 'POST', url: '/auth/refresh', headers: { 'x-forwarded-for': `[2001:db8:7::${port.toString(16)}]:${port}` } })).statusCode)
  }
  t.same(refreshes, [401, 401, 401, 429], 'refreshes, counted in memory: one /64 on new ports is one client')
  const { email } = await registerAndLogin(app)
  const signedIn = await loginAs(app, email, PASSWORD, { 'x-forwarded-for': '203.0.113.9:51234' })
  const { sessions } = (await app.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${signedIn.json().accessToken as string}` } })).json()
  t.equal(sessions[0].ip, '203.0.113.9', 'and its session lists the address without the port')
})

t.test('per IP: behind two proxies that write ports (Azure Front Door, then Application Gateway), TRUST_PROXY listing both counts the client', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_IP: '5/60', TRUST_PROXY: '127.0.0.1,10.0.0.0/8' } })
  const statuses = []
  for (let port = 50_000; port < 50_006; port++) {
    // Through either of two instances of the inner proxy, each writing its own entry with its port.
    statuses.push((await loginAs(app, uniqueEmail(), 'wrong password!', { 'x-forwarded-for': `198.51.100.7:${port}, 10.1.2.${3 + port % 2}:${port + 1000}` })).statusCode)
  }
  t.same(statuses, [401, 401, 401, 401, 401, 429], 'the inner proxy\'s entry, with its port, is trusted as its address is: the client is counted, not the proxy')
  t.equal((await loginAs(app, uniqueEmail(), 'wrong password!', { 'x-forwarded-for': '198.51.100.8:50000, 10.1.2.3:51000' })).statusCode, 401, 'and another client behind the same proxies is not')
  const innerUnlisted = await buildApp(t, { env: { TRUST_PROXY: '127.0.0.1' } })
  const { email } = await registerAndLogin(innerUnlisted)
  const signedIn = await loginAs(innerUnlisted, email, PASSWORD, { 'x-forwarded-for': '198.51.100.9:50000, 10.1.2.3:51000' })
  const { sessions } = (await innerUnlisted.inject({ url: '/auth/sessions', headers: { authorization: `Bearer ${signedIn.json().accessToken as string}` } })).json()
  t.equal(sessions[0].ip, '10.1.2.3', 'a proxy not listed is the client, and what it forwards is not believed')
})

t.test('refresh: per-session limit shared across instances; the token stays valid', async (t) => {
  const prefix = uniquePrefix()
  const env = { RATE_LIMIT_REFRESH_SESSION: '3/1', REFRESH_REUSE_GRACE: '10' }
  const a = await buildApp(t, { prefix, env })
  const b = await buildApp(t, { prefix, env })
  const s = await registerAndLogin(a)
  // The same token four times (grace answers): the 4th is over the limit.
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await refresh(i % 2 === 0 ? a : b, s.cookie)).statusCode)
  t.same(statuses, [200, 200, 200, 429])
  const limited = await refresh(a, s.cookie)
  t.equal(limited.statusCode, 429)
  t.equal(limited.headers['retry-after'], '1')
  t.notOk(limited.headers['set-cookie'], 'the cookie is left alone')
  await sleep(1100)
  t.equal((await refresh(b, s.cookie)).statusCode, 200, 'after the window the same token works')
  const other = await login(a, s.email)
  t.equal((await refresh(a, other.cookie)).statusCode, 200, 'other sessions of the user were never limited')
})

t.test('refresh: per-IP limit', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_REFRESH_IP: '5/60' } })
  const responses = []
  for (let i = 0; i < 7; i++) responses.push(await refresh(app, ''))
  t.same(responses.map((r) => r.statusCode), [401, 401, 401, 401, 401, 429, 429])
  t.match(responses[5]?.headers['retry-after'], /^\d+$/, 'the 429 says when to come back')
  t.equal(responses[5]?.json().code, 'RATE_LIMITED')
})

t.test('per IP on IPv6: every address of one /64 is one client, whose budget a new address does not renew', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_IP: '5/60', RATE_LIMIT_NOT_FOUND_IP: '5/60', RATE_LIMIT_REFRESH_IP: '5/60' } })
  // A client on 2001:db8:0:1::/64 taking a new address for every request, as any IPv6 host can.
  const rotating = (i: number) => `2001:db8:0:1:${(i + 1).toString(16)}::${(i * 7 + 3).toString(16)}`
  const sends = {
    login: (remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email: uniqueEmail(), password: 'wrong password!' }, remoteAddress }),
    'unknown route': (remoteAddress: string) => app.inject({ url: '/wp-login.php', remoteAddress }),
    refresh: (remoteAddress: string) => app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress })
  }
  for (const [route, send] of Object.entries(sends)) {
    const statuses = []
    for (let i = 0; i < 7; i++) statuses.push((await send(rotating(i))).statusCode)
    t.same(statuses.slice(5), [429, 429], `${route}: the sixth and seventh addresses of the /64 are refused`)
    t.not((await send('2001:db8:0:2::1')).statusCode, 429, `${route}: the next /64 is another client`)
    t.not((await send('::ffff:198.51.100.20')).statusCode, 429, `${route}: and an IPv4 client its own`)
  }
})

t.test('an attacker taking a new IPv6 address per guess is still one address to the account\'s limit', async (t) => {
  const from = await accountLimitedTo(t, '5/60', '100/60')
  const statuses = []
  for (let i = 0; i < 7; i++) statuses.push((await from(`2001:db8:0:1::${i + 1}`, `guess number ${i}`)).statusCode)
  t.same(statuses, [401, 401, 401, 401, 401, 429, 429])
  t.equal((await from('2001:0DB8:0000:0001:0000:0000:0000:0abc', PASSWORD)).statusCode, 429, 'the same /64 written in full is the same client')
  t.equal((await from('2001:db8:0:2::1', PASSWORD)).statusCode, 200, 'the owner, on another network, signs in')
})

t.test('an IPv4 client is one address to the account\'s limit whether it arrives as IPv4 or IPv4-mapped IPv6', async (t) => {
  const from = await accountLimitedTo(t, '3/60', '100/60')
  const statuses = []
  for (let i = 0; i < 4; i++) statuses.push((await from(i % 2 === 0 ? '203.0.113.7' : '::ffff:203.0.113.7', `guess number ${i}`)).statusCode)
  t.same(statuses, [401, 401, 401, 429])
  t.equal((await from('203.0.113.8', PASSWORD)).statusCode, 200, 'the next IPv4 address is another client')
})

for (const store of ['redis', 'memory'] as const) {
  t.test(`RATE_LIMIT_EXEMPT (${store}): the clients it lists pass every per-address limit, the other clients are held to them`, async (t) => {
    const perAddress = { RATE_LIMIT_LOGIN_IP: '2/60', RATE_LIMIT_REGISTER_IP: '2/60', RATE_LIMIT_PASSWORD_IP: '2/60', RATE_LIMIT_REFRESH_IP: '2/60', RATE_LIMIT_NOT_FOUND_IP: '2/60' }
    // Wrong current passwords are counted per session too (10 by default): raised out of the way of the 12 sent.
    const app = await buildApp(t, { store, env: { ...perAddress, RATE_LIMIT_LOGIN_ACCOUNT_IP: '100/60', RATE_LIMIT_EXEMPT: '203.0.113.0/24, 2001:db8:1::/48' } })
    const s = await registerAndLogin(app)
    // Each route's answer within its limit: a wrong password, a new account, no cookie, no such route.
    const sends: Record<string, [number, (remoteAddress: string) => Promise<{ statusCode: number }>]> = {
      login: [401, (remoteAddress) => app.inject({ method: 'POST', url: '/auth/login', payload: { email: uniqueEmail(), password: 'wrong password!' }, remoteAddress })],
      register: [201, (remoteAddress) => app.inject({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail(), password: PASSWORD }, remoteAddress })],
      'password change': [401, (remoteAddress) => app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${s.accessToken}` }, payload: { currentPassword: 'wrong password!', newPassword: 'a brand new password' }, remoteAddress })],
      refresh: [401, (remoteAddress) => app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress })],
      'unknown route': [404, (remoteAddress) => app.inject({ url: '/wp-login.php', remoteAddress })]
    }
    const threeFrom = async (send: (remoteAddress: string) => Promise<{ statusCode: number }>, remoteAddress: string) => {
      const statuses = []
      for (let i = 0; i < 3; i++) statuses.push((await send(remoteAddress)).statusCode)
      return statuses
    }
    for (const [route, [answer, send]] of Object.entries(sends)) {
      for (const exempt of ['203.0.113.9', '::ffff:203.0.113.10', '2001:db8:1:5::1']) {
        t.same(await threeFrom(send, exempt), [answer, answer, answer], `${route}: ${exempt}, listed, passes its limit of 2`)
      }
      t.same(await threeFrom(send, '198.51.100.7'), [answer, answer, 429], `${route}: an address not listed is refused its third`)
    }
  })
}

t.test('RATE_LIMIT_EXEMPT: behind a trusted proxy, the clients it names in X-Forwarded-For are exempt, not the proxy', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_IP: '2/60', TRUST_PROXY: '127.0.0.1', RATE_LIMIT_EXEMPT: '203.0.113.7' } })
  const send = (forwardedFor?: string) => app.inject({ method: 'POST', url: '/auth/login', payload: { email: uniqueEmail(), password: 'wrong password!' }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } })
  const statuses = async (forwardedFor?: string) => {
    const all = []
    for (let i = 0; i < 3; i++) all.push((await send(forwardedFor)).statusCode)
    return all
  }
  t.same(await statuses('203.0.113.7'), [401, 401, 401], 'the listed client')
  t.same(await statuses('203.0.113.7:51234'), [401, 401, 401], 'the listed client, its port written beside it by the proxy')
  t.same(await statuses('198.51.100.8'), [401, 401, 429], 'another client of the proxy')
  t.same(await statuses(), [401, 401, 429], 'the proxy itself, naming no client')
  t.same(await statuses('203.0.113.7, 198.51.100.9'), [401, 401, 429], 'a client that names the listed address itself, ahead of its own')
})

t.test('RATE_LIMIT_EXEMPT: failed sign-ins from a listed address still count toward the account\'s limits', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '3/60', RATE_LIMIT_LOGIN_ACCOUNT: '5/60', RATE_LIMIT_EXEMPT: '203.0.113.0/24' } })
  const email = uniqueEmail()
  await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })
  const from = async (remoteAddress: string, password: string) => (await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress })).statusCode
  const first = []
  for (let i = 0; i < 4; i++) first.push(await from('203.0.113.9', `guess number ${i}`))
  t.same(first, [401, 401, 401, 429], 'per account from that address')
  const spread = []
  for (let i = 0; i < 3; i++) spread.push(await from(`203.0.113.${20 + i}`, `another guess ${i}`))
  t.same(spread, [401, 401, 429], 'and per account from every address: the fifth failure in all holds the sixth')
})

t.test('register and password change have their own limits', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_REGISTER_IP: '3/60' } })
  const registers = []
  for (let i = 0; i < 4; i++) registers.push((await app.inject({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail(), password: PASSWORD } })).statusCode)
  t.same(registers, [201, 201, 201, 429])

  const other = await buildApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '10/60' } })
  const s = await registerAndLogin(other)
  const change = () => other.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${s.accessToken}` }, payload: { currentPassword: 'wrong password!', newPassword: 'a brand new password' } })
  const changes = []
  for (let i = 0; i < 12; i++) changes.push((await change()).statusCode)
  t.same(changes.slice(0, 10), Array(10).fill(401))
  t.same(changes.slice(10), [429, 429], 'wrong current passwords are limited per user as login is per address (RATE_LIMIT_LOGIN_ACCOUNT_IP)')
})

t.test('a successful password change resets the count of wrong current passwords', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '5/60' } })
  const s = await registerAndLogin(app)
  const change = (currentPassword: string, newPassword = 'a brand new password') =>
    app.inject({ method: 'POST', url: '/auth/password', headers: { authorization: `Bearer ${s.accessToken}` }, payload: { currentPassword, newPassword } })
  for (let i = 0; i < 4; i++) t.equal((await change('wrong password!')).statusCode, 401)
  t.equal((await change(PASSWORD)).statusCode, 204, 'the right current password, after 4 wrong ones')
  const after = []
  for (let i = 0; i < 4; i++) after.push((await change('wrong password!')).statusCode)
  t.same(after, [401, 401, 401, 401], 'the limit (5) counts from the change: 4 + 4 would have passed it')
  t.equal((await change('a brand new password', 'yet another new password')).statusCode, 204, 'and the new password changes it again')
})

t.test('the 404 handler is rate-limited', async (t) => {
  const app = await buildApp(t, { env: { RATE_LIMIT_NOT_FOUND_IP: '5/60' } })
  const statuses = []
  for (let i = 0; i < 7; i++) statuses.push((await app.inject({ url: `/wp-admin/${i}` })).statusCode)
  t.same(statuses, [404, 404, 404, 404, 404, 429, 429])
  const other = await buildApp(t, { env: { RATE_LIMIT_NOT_FOUND_IP: '3/60' } })
  const methods = []
  for (const method of ['GET', 'PUT', 'PATCH', 'GET'] as const) methods.push((await other.inject({ method, url: '/auth/login' })).statusCode)
  t.same(methods, [405, 405, 405, 429], 'and so are methods tried on a path that serves another, one count with unknown paths')
})

t.test('rate limits on the embedded store too', async (t) => {
  const app = await buildApp(t, { store: 'memory', env: { RATE_LIMIT_LOGIN_ACCOUNT_IP: '2/60' } })
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await loginAs(app, 'someone@example.com', 'wrong password!')).statusCode)
  t.same(statuses, [401, 401, 429])
})
