# syntax=docker/dockerfile:1

# Node.js 24, an LTS line with security releases until 2028-04-30: Node 20 reached its end of life on 2026-04-30, and
# an authentication service must not ship on a runtime that no longer gets security fixes. On Debian 13 (trixie), for
# the same reason: Debian 12 (bookworm) left the Security Team's support in June 2026, for the LTS team's best effort
# on a subset of its packages. Every stage uses the same image, so the runtime loads the native module (argon2) that
# the deps stage installed for it.

# --- build: compile TypeScript ---
FROM node:24-trixie-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Only the TypeScript compiler runs here: no native module needs building.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY plugins ./plugins
COPY routes ./routes
RUN npm run build

# --- deps: production dependencies only. argon2's install script loads its prebuilt binary and
# compiles from source when that fails (its linux-x64 prebuild crashes under Node 20 on this project's
# machines, and loads under Node 24), so this stage alone has a C++ toolchain ---
FROM node:24-trixie-slim AS deps
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime ---
FROM node:24-trixie-slim
# HOST=:: listens on IPv6 and IPv4 alike (Linux's dual-stack sockets): an IPv6-only Kubernetes cluster reaches the
# pod too, which 0.0.0.0 (IPv4 only) would leave unready. It binds also in a network namespace with IPv6 turned off
# (net.ipv6.conf.all.disable_ipv6=1), IPv4 clients served; only a kernel booted without IPv6 (ipv6.disable=1) refuses
# it: set HOST=0.0.0.0 there. IPv4 clients then arrive as ::ffff:a.b.c.d, listed and logged as a.b.c.d.
ENV NODE_ENV=production \
    HOST=:: \
    PORT=3000
WORKDIR /app
# Owned by root, as COPY leaves them: the service's user reads its code and dependencies and cannot change them, so
# whoever took over the process could not make a change to them that outlives it. It writes nothing of its own.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The official image's unprivileged user.
USER node
# With METRICS_PORT set, /metrics is served there instead, for a scraper on the instance's network: publish it
# (docker run -p / a Service port) only where Prometheus can reach it, never on the public load balancer.
EXPOSE 3000
# Liveness only: readiness (/health/ready) depends on Redis and belongs to the load balancer. Asked at the address the
# service listens on: HOST, or loopback when that is every interface (:: or 0.0.0.0).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const h=process.env.HOST||'::';const a=h==='::'||h==='0.0.0.0'?'127.0.0.1':h.includes(':')?'['+h+']':h;fetch('http://'+a+':'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node as PID 1 receives SIGTERM directly; close-with-grace drains and exits.
CMD ["node", "dist/src/server.js"]
