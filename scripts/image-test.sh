#!/usr/bin/env bash
# scripts/image-test.sh: builds the app image with podman exactly as apps/apigate/Dockerfile says and
# checks what a user meets: the HEALTHCHECK (following --port, not APIGATE_PORT), the CLI, the
# non-root user owning the data volume, a clean exit on SIGTERM, a rebuild after a source change
# that reuses the dependency layer (no better-sqlite3 recompile), and a third-party provider added
# through a derived image (FROM apigate + npm install in the plugin folder). Slow (20 min from scratch
# on a busy 2-core VM: 7 for the stand-in base, 10 for the first build; 3.5 for the rebuild): a
# documented command, not part of `pnpm test`.
#
#   apt-get install podman runc debootstrap     # once
#   scripts/image-test.sh                        # prints one line per step, "image-test: PASSED" at the end
#
# Machine notes (a VM without a container registry, with a TLS-intercepting proxy):
# - podman runs with --runtime runc --cgroup-manager=cgroupfs and CONTAINERS_CONF holding
#   `[containers] default_ulimits = []`; builds use --pull=never --network=host --format docker
#   (the docker format keeps HEALTHCHECK).
# - No registry is reachable, so when docker.io/library/node:20-bookworm-slim is missing the script
#   makes a stand-in: `debootstrap --variant=minbase bookworm` plus this machine's node, npm and node
#   headers under /usr/local, and the user node (uid 1000), as in the official image.
# - npm and pnpm inside the build get this machine's CA bundle (`cafile`) and `nodedir` from a
#   build-only read-only mount at /run/build-config (the Dockerfile's NPM_CONFIG_USERCONFIG); nothing
#   of it lands in an image layer.
# Env: APIGATE_IMAGE_TEST_KEEP=1 keeps the temp folder and the images.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/apigate-image-test-XXXXXX)"
IMAGE=localhost/apigate-image-test
PLUGIN_IMAGE=localhost/apigate-image-test-plugin
BASE=docker.io/library/node:20-bookworm-slim
START=$(date +%s)
log() { echo "image-test [$(printf '%3d' $(( $(date +%s) - START ))) s] $*"; }
fail() { echo "image-test: FAILED: $*" >&2; exit 1; }

for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || fail "$tool is missing: apt-get install podman runc debootstrap"
done
printf '[containers]\ndefault_ulimits = []\n' > "$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"
pm() { podman --runtime runc --cgroup-manager=cgroupfs "$@"; }
CONTAINERS=()
cleanup() {
  for c in "${CONTAINERS[@]}"; do pm rm -f "$c" >/dev/null 2>&1 || true; done
  if [[ -z "${APIGATE_IMAGE_TEST_KEEP:-}" ]]; then
    pm rmi -f "$PLUGIN_IMAGE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  else
    log "kept $WORK"
  fi
}
trap cleanup EXIT
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

# ── the base image ─────────────────────────────────────────────────────────────────────────────
if pm image exists "$BASE"; then
  log "base image $BASE present"
else
  log "no $BASE: making a stand-in (debootstrap minbase bookworm + this machine's node $(node -v))"
  ROOTFS="$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$ROOTFS" http://deb.debian.org/debian > "$WORK/debootstrap.log" 2>&1 \
    || fail "debootstrap failed, see $WORK/debootstrap.log"
  NODE_PREFIX="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  install -D -m 755 "$(readlink -f "$(command -v node)")" "$ROOTFS/usr/local/bin/node"
  mkdir -p "$ROOTFS/usr/local/include" "$ROOTFS/usr/local/lib/node_modules"
  cp -a "$NODE_PREFIX/include/node" "$ROOTFS/usr/local/include/node"
  cp -a "$NODE_PREFIX/lib/node_modules/npm" "$ROOTFS/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
  chroot "$ROOTFS" groupadd --gid 1000 node
  chroot "$ROOTFS" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  rm -rf "$ROOTFS/var/cache/apt/archives/"*.deb "$ROOTFS/var/lib/apt/lists/"*
  tar -C "$ROOTFS" -c . | pm import --change 'CMD ["node"]' - "$BASE" >/dev/null
  rm -rf "$ROOTFS"
  log "stand-in $BASE imported"
fi

# ── build-only npm settings ────────────────────────────────────────────────────────────────────
CFG="$WORK/build-config"
mkdir -p "$CFG"
CAFILE="$(npm config get cafile)"
{
  if [[ -n "$CAFILE" && "$CAFILE" != "null" && "$CAFILE" != "undefined" && -f "$CAFILE" ]]; then
    cp "$CAFILE" "$CFG/ca.crt"
    echo "cafile=/run/build-config/ca.crt"
  fi
  echo "nodedir=/usr/local"
  echo "audit=false"
  echo "fund=false"
  echo "update-notifier=false"
} > "$CFG/npmrc"

# ── build (from a copy of the context, so the source change below stays out of the checkout) ──
CTX="$WORK/context"
mkdir -p "$CTX"
(cd "$ROOT" && tar --exclude=node_modules --exclude=dist --exclude=.turbo --exclude=data --exclude=.git -cf - .) | tar -xf - -C "$CTX"
build() {
  pm build --pull=never --network=host --format docker -v "$CFG:/run/build-config:ro" -f "$1" -t "$2" "$3"
}
log "podman build (first build installs and compiles every dependency)"
T0=$(date +%s)
build "$CTX/apps/apigate/Dockerfile" "$IMAGE" "$CTX" > "$WORK/build1.log" 2>&1 || { tail -40 "$WORK/build1.log"; fail "podman build failed"; }
log "built $IMAGE in $(( $(date +%s) - T0 )) s"
[[ "$(pm image inspect -f '{{.Config.Healthcheck}}' "$IMAGE")" == *healthcheck.js* ]] || fail "the image has no HEALTHCHECK"
[[ "$(pm image inspect -f '{{.Config.User}}' "$IMAGE")" == node ]] || fail "the image does not run as node"

# ── a source change reuses the dependency layer ────────────────────────────────────────────────
echo "// image-test: a source change" >> "$CTX/packages/kernel/src/index.ts"
T0=$(date +%s)
build "$CTX/apps/apigate/Dockerfile" "$IMAGE" "$CTX" > "$WORK/build2.log" 2>&1 || { tail -40 "$WORK/build2.log"; fail "the second podman build failed"; }
INSTALL_STEP="$(grep -n 'RUN pnpm install --frozen-lockfile$' "$WORK/build2.log" | head -1 | cut -d: -f1)"
[[ -n "$INSTALL_STEP" ]] || fail "the dependency install step is not in the build log"
sed -n "$((INSTALL_STEP + 1))p" "$WORK/build2.log" | grep -q 'Using cache' || fail "a source change re-ran the dependency install (see $WORK/build2.log)"
log "rebuild after a source change: dependency layer from cache, in $(( $(date +%s) - T0 )) s"

# ── run: health follows --port, non-root, CLI ──────────────────────────────────────────────────
PORT="$(free_port)"
pm run -d --name apigate-image-test --network=host "$IMAGE" serve --port "$PORT" --host 127.0.0.1 > /dev/null
CONTAINERS+=(apigate-image-test)
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$PORT/admin/health" > "$WORK/health.json" 2>/dev/null && break
  sleep 1
done
grep -q '"status":"healthy"' "$WORK/health.json" || { pm logs apigate-image-test | tail -20; fail "no healthy /admin/health on port $PORT"; }
pm logs apigate-image-test 2>&1 | grep -q "apigate listening on http://127.0.0.1:$PORT (bound to 127.0.0.1:$PORT)" || fail "the start-up log does not name the bound address"
pm healthcheck run apigate-image-test > /dev/null || fail "HEALTHCHECK fails although the server answers on --port $PORT (APIGATE_PORT is 8080)"
log "serve --port $PORT: /admin/health healthy, HEALTHCHECK passes, log names the bound address"
[[ "$(pm exec apigate-image-test id -u)" == 1000 ]] || fail "the server does not run as uid 1000"
[[ "$(pm exec apigate-image-test stat -c %u /var/lib/apigate)" == 1000 ]] || fail "/var/lib/apigate is not owned by uid 1000"
log "runs as uid 1000 (node), data volume owned by 1000"
pm run --rm --network=host "$IMAGE" providers list > "$WORK/list.txt" 2>&1 || { cat "$WORK/list.txt"; fail "apigate providers list failed in the image"; }
grep -q 'notification.*log.*\*' "$WORK/list.txt" || fail "providers list does not show the selected log notification provider"
pm run --rm --network=host --entrypoint apigate "$IMAGE" --version > /dev/null || fail "the apigate command is not on PATH"
log "CLI: apigate providers list and apigate --version work"

# ── SIGTERM ────────────────────────────────────────────────────────────────────────────────────
T0=$(date +%s)
pm stop -t 30 apigate-image-test > /dev/null
STOP_S=$(( $(date +%s) - T0 ))
CODE="$(pm inspect -f '{{.State.ExitCode}}' apigate-image-test)"
[[ "$CODE" == 0 ]] || fail "exit code $CODE after SIGTERM"
(( STOP_S < 25 )) || fail "SIGTERM took $STOP_S s (killed at the timeout?)"
pm logs apigate-image-test 2>&1 | grep -q '"msg":"stopped"' || fail "no 'stopped' line after SIGTERM"
log "SIGTERM: exit 0 in ${STOP_S} s, 'stopped' logged"

# ── a plugin through a derived image ───────────────────────────────────────────────────────────
PCTX="$WORK/plugin-context"
mkdir -p "$PCTX"
TGZ="$(cd "$ROOT/examples/custom-provider" && npm pack --silent --pack-destination "$PCTX" 2>/dev/null | tail -1)"
[[ -f "$PCTX/$TGZ" ]] || fail "npm pack of examples/custom-provider failed"
cat > "$PCTX/Dockerfile" <<DOCKERFILE
FROM $IMAGE
COPY $TGZ /tmp/
# No kernel of its own: the plugin imports the app's (--legacy-peer-deps skips the peer).
RUN cd /opt/apigate/plugins && NPM_CONFIG_USERCONFIG=/run/build-config/npmrc npm install --legacy-peer-deps /tmp/$TGZ
ENV NOTIFICATION_PROVIDER=jsonl
DOCKERFILE
build "$PCTX/Dockerfile" "$PLUGIN_IMAGE" "$PCTX" > "$WORK/build-plugin.log" 2>&1 || { tail -30 "$WORK/build-plugin.log"; fail "the derived image did not build"; }
PORT="$(free_port)"
pm run -d --name apigate-image-test-plugin --network=host "$PLUGIN_IMAGE" serve --port "$PORT" --host 127.0.0.1 > /dev/null
CONTAINERS+=(apigate-image-test-plugin)
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$PORT/admin/health" > "$WORK/health-plugin.json" 2>/dev/null && break
  sleep 1
done
grep -q '"notification":{"provider":"jsonl","status":"connected"' "$WORK/health-plugin.json" \
  || { cat "$WORK/health-plugin.json"; pm logs apigate-image-test-plugin | tail -20; fail "the derived image does not serve the jsonl plugin"; }
pm healthcheck run apigate-image-test-plugin > /dev/null || fail "HEALTHCHECK fails in the derived image"
log "derived image (FROM apigate + npm install in /opt/apigate/plugins): notification served by jsonl, healthy"

log "PASSED in $(( $(date +%s) - START )) s"
