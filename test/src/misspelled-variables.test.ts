import t from 'tap'
import { KNOWN_VARIABLES } from '../../src/config.js'
import { misspelledVariables, unreadVariables } from '../../src/misspelled-variables.js'

const slips = (names: string[]) => misspelledVariables(names, KNOWN_VARIABLES)
const strays = (names: string[]) => unreadVariables(names, KNOWN_VARIABLES).strays.map(({ name, namespace }) => ({ name, namespace }))

t.test('a slip of a name the service reads is taken for that name', async (t) => {
  t.same(slips(['REFRESH_IDEL_TTL', 'REFRESH_TOKEN_SECRETS', 'JWT_KEY_FILE', 'COOKIE_SAME_SITE', 'METRIC_PORT', 'LOGLEVEL', 'RATE_LIMIT_LOGIN_IPS']), [
    { name: 'REFRESH_IDEL_TTL', meant: 'REFRESH_IDLE_TTL' },
    { name: 'REFRESH_TOKEN_SECRETS', meant: 'REFRESH_TOKEN_SECRET' },
    { name: 'JWT_KEY_FILE', meant: 'JWT_KEYS_FILE' },
    { name: 'COOKIE_SAME_SITE', meant: 'COOKIE_SAMESITE' },
    { name: 'METRIC_PORT', meant: 'METRICS_PORT' },
    { name: 'LOGLEVEL', meant: 'LOG_LEVEL' },
    { name: 'RATE_LIMIT_LOGIN_IPS', meant: 'RATE_LIMIT_LOGIN_IP' }
  ], 'a letter left out, doubled, swapped or added')
  t.same(slips(['redis_url', 'Node_Env', 'port']), [{ name: 'redis_url', meant: 'REDIS_URL' }, { name: 'Node_Env', meant: 'NODE_ENV' }, { name: 'port', meant: 'PORT' }],
    'a name in another case, which Linux reads as another variable: a short one too, as it differs in nothing else')
  t.same(slips(['POST', 'HOME', 'HOSTS', 'PROT']), [], 'a short name one or two letters off is not taken for PORT or HOST: too many others are')
  t.same(slips(['TRUST_PROXIES', 'REDIS_CLUSTER_NODE', 'ALLOWED_ORIGIN']), [
    { name: 'TRUST_PROXIES', meant: 'TRUST_PROXY' },
    { name: 'REDIS_CLUSTER_NODE', meant: 'REDIS_CLUSTER_NODES' },
    { name: 'ALLOWED_ORIGIN', meant: 'ALLOWED_ORIGINS' }
  ], 'a plural for a singular, or the reverse, however many letters its ending changes')
  t.same(slips(['PORTS', 'HOSTS']), [], 'but not of a short name')
  t.same(slips(['RATE_LIMIT_LOGIN_ACCOUNT_IPS']), [{ name: 'RATE_LIMIT_LOGIN_ACCOUNT_IPS', meant: 'RATE_LIMIT_LOGIN_ACCOUNT_IP' }],
    'the nearest of several near ones (RATE_LIMIT_LOGIN_ACCOUNT is two letters off, RATE_LIMIT_LOGIN_ACCOUNT_IP one)')
  t.same(slips(['REFRESH_TOKEN_SECRET', 'JWT_KEYS_FILE', 'PORT']), [], 'a name it reads is no slip')
  t.same(slips(['REFRESH_ABSOLUTE_TIMEOUT', 'COOKIE_DOMAIN', 'REDIS_HOST']), [], 'nor a name three or more letters from any it reads')
})

t.test('the environments platforms give a process raise nothing: their names are not slips of the service\'s', async (t) => {
  const platforms: Record<string, string[]> = {
    'a shell and the official node image': ['PATH', 'HOME', 'HOSTNAME', 'USER', 'SHELL', 'TERM', 'LANG', 'LC_ALL', 'PWD', 'OLDPWD', 'SHLVL', 'TZ', 'TMPDIR', 'NODE_VERSION', 'YARN_VERSION', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS', 'UV_THREADPOOL_SIZE', 'DEBUG', 'CI'],
    // A Service named redis, metrics, auth-service or log in the namespace (service links: src/config.ts's METRICS_PORT).
    Kubernetes: ['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', 'KUBERNETES_PORT', 'KUBERNETES_PORT_443_TCP', 'REDIS_SERVICE_HOST', 'REDIS_SERVICE_PORT', 'REDIS_PORT', 'REDIS_PORT_6379_TCP', 'REDIS_PORT_6379_TCP_ADDR', 'REDIS_PORT_6379_TCP_PORT', 'REDIS_PORT_6379_TCP_PROTO', 'METRICS_SERVICE_HOST', 'METRICS_SERVICE_PORT', 'AUTH_SERVICE_SERVICE_HOST', 'AUTH_SERVICE_PORT', 'LOG_PORT', 'LOG_SERVICE_HOST', 'POD_NAME', 'POD_IP', 'NODE_NAME'],
    'proxies and TLS': ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'SSL_CERT_FILE', 'SSL_CERT_DIR'],
    'clouds and CI': ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_EXECUTION_ENV', 'ECS_CONTAINER_METADATA_URI_V4', 'DYNO', 'FLY_APP_NAME', 'FLY_REGION', 'RENDER_SERVICE_NAME', 'GITHUB_ACTIONS', 'GITHUB_SHA', 'RUNNER_OS', 'RUNNER_TEMP'],
    telemetry: ['OTEL_SERVICE_NAME', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_RESOURCE_ATTRIBUTES', 'OTEL_LOG_LEVEL', 'SENTRY_DSN', 'SENTRY_ENVIRONMENT'],
    'npm scripts': ['npm_lifecycle_event', 'npm_package_name', 'npm_config_user_agent', 'npm_execpath', 'npm_node_execpath', 'INIT_CWD', 'COLOR', 'EDITOR']
  }
  for (const [platform, names] of Object.entries(platforms)) {
    t.same(slips(names), [], `${platform}: no slip`)
    t.same(strays(names), [], `${platform}: none under the service's own beginnings`)
  }
  const own = Object.keys(process.env)
  t.same([...slips(own), ...strays(own)], [], `nor this process's own (${own.length} variables)`)
  // Docker's legacy links, for a container named redis.
  t.same(strays(['REDIS_NAME', 'REDIS_ENV_REDIS_VERSION', 'REDIS_PORT_6379_TCP_ADDR']), [], 'Docker: a linked container\'s')
})

t.test('a name under one of the service\'s own beginnings that it does not read is named, with those it does read there', async (t) => {
  // What other services, their images and tutorials read: set for this service, which would go without it.
  t.same(strays(['REDIS_HOST', 'REDIS_PASSWORD', 'RATE_LIMIT_LOGIN_MAX', 'JWT_EXPIRES_IN', 'ACCESS_TOKEN_SECRET', 'REFRESH_TOKEN_EXPIRY', 'COOKIE_DOMAIN', 'ARGON2_SALT_LENGTH']), [
    { name: 'REDIS_HOST', namespace: 'REDIS_' },
    { name: 'REDIS_PASSWORD', namespace: 'REDIS_' },
    { name: 'RATE_LIMIT_LOGIN_MAX', namespace: 'RATE_LIMIT_' },
    { name: 'JWT_EXPIRES_IN', namespace: 'JWT_' },
    { name: 'ACCESS_TOKEN_SECRET', namespace: 'ACCESS_TOKEN_' },
    { name: 'REFRESH_TOKEN_EXPIRY', namespace: 'REFRESH_' },
    { name: 'COOKIE_DOMAIN', namespace: 'COOKIE_' },
    { name: 'ARGON2_SALT_LENGTH', namespace: 'ARGON2_' }
  ])
  const family = unreadVariables(['REDIS_HOST'], KNOWN_VARIABLES).strays[0]?.family ?? []
  t.ok(family.includes('REDIS_URL') && family.includes('REDIS_URL_FILE'), 'with the names it reads there, REDIS_URL among them')
  t.ok(family.every((name) => name.startsWith('REDIS_')), 'and only those')
  t.same(strays(['REFRESH_IDEL_TTL', 'REDIS_URL', 'JWT_KEYS_FILE']), [], 'not a slip, named as one already, nor a name it reads')
  t.same(strays(['redis_host', 'LOG_FORMAT', 'METRICS_PATH', 'NODE_TLS_REJECT_UNAUTHORIZED']), [], 'nor a name under a beginning others share, or in another case')
})
