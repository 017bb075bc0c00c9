#!/usr/bin/env bash
# Starts throwaway REAL registries (Debian's docker-registry, CNCF distribution 2.8) and
# misbehaving proxies in front of them on 127.0.0.1, runs a command with their addresses
# in the environment, and stops everything afterwards, whatever happens (trap on EXIT):
# no stray daemons.
#
#   registry_env.sh COMMAND [ARGS...]
#
# Exported to COMMAND:
#   LB_REG_PLAIN        HOST:PORT  plain HTTP, no auth
#   LB_REG_AUTH         HOST:PORT  plain HTTP, htpasswd (Basic) auth
#   LB_REG_AUTH_FILE    docker config.json with the right Basic credentials for it
#   LB_REG_BADAUTH_FILE the same with a wrong password
#   LB_REG_TLS          HOST:PORT  HTTPS with a certificate of a CA made here
#   LB_REG_CA           that CA's certificate (PEM)
#   LB_PROXY_NORANGE    HOST:PORT  -> LB_REG_PLAIN, drops Range headers (200 full bodies)
#   LB_PROXY_FLIP       HOST:PORT  -> LB_REG_PLAIN, flips a byte in every 206 body
#   LB_PROXY_HANG       HOST:PORT  accepts connections, never answers
#   LB_PROXY_FLAKY      HOST:PORT  -> LB_REG_PLAIN, every other request answered 503
#   LB_PROXY_BEARER     HOST:PORT  -> LB_REG_PLAIN behind the Bearer token flow; the
#                       token service takes the credentials in LB_REG_AUTH_FILE
#   LB_PROXY_SWITCH     HOST:PORT  -> LB_REG_PLAIN while the file LB_PROXY_SWITCH_DOWN does
#                       not exist; while it does, connections are closed unanswered (a
#                       stopped registry), or never answered if the file holds "hang"
#   LB_REG_DOWN         HOST:PORT  nothing listens there
#   LB_PROXY_SLOW       HOST:PORT  -> LB_REG_PLAIN with REGISTRY_ENV_SLOW_RTT_MS (default 0)
#                       of round trip and REGISTRY_ENV_SLOW_MBIT (default 16) of bandwidth
#                       per request
#   LB_REG_LOG_PLAIN    the plain registry's log (access log lines)
#   LB_REG_TMP          a scratch directory removed afterwards
# Exits with COMMAND's status; 77 (ctest "skipped") when docker-registry is missing.
set -euo pipefail

REGISTRY=${REGISTRY:-$(command -v docker-registry || echo /usr/bin/docker-registry)}
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3); fi
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ ! -x $REGISTRY ]]; then
  echo "registry_env: docker-registry not installed (scripts/install-deps.sh installs it)" >&2
  exit 77
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lazyblob-registry.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n ${WATCHDOG:-} ]] && kill "$WATCHDOG" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_registry NAME [auth|tls]: sets ADDR=HOST:PORT once it answers. Not run in $(...):
# the pid must reach PIDS in this shell. free_port's port may be taken again before the
# registry binds it (tests run in parallel): then it starts over on another port.
start_registry() {
  local name=$1 kind=${2:-} port dir try i scheme=http curl_args=()
  dir=$TMP/$name
  mkdir -p "$dir/data"
  local extra="" tls=""
  if [[ $kind == auth ]]; then
    extra="auth:
  htpasswd:
    realm: lazyblob-test
    path: $TMP/htpasswd"
  fi
  if [[ $kind == tls ]]; then
    tls="  tls:
    certificate: $TMP/tls/server.pem
    key: $TMP/tls/server.key"
    scheme=https
    curl_args=(--cacert "$TMP/tls/ca.pem")
  fi
  for ((try = 0; try < 5; try++)); do
    port=$(free_port)
    cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: lazyblob-test-secret
$tls
$extra
YAML
    "$REGISTRY" serve "$dir/config.yml" >"$dir/log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 200; i++)); do
      # Alive after answering: the answer came from this registry, not a port squatter.
      if curl -s -o /dev/null "${curl_args[@]}" "$scheme://127.0.0.1:$port/v2/" &&
        kill -0 "$pid" 2>/dev/null && ! grep -q "address already in use" "$dir/log"; then
        ADDR="127.0.0.1:$port"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    echo "registry_env: registry $name did not come up on port $port:" >&2
    tail -n 3 "$dir/log" >&2
  done
  return 1
}

# start_proxy MODE UPSTREAM_HOSTPORT [args]: sets ADDR=HOST:PORT once it listens.
start_proxy() {
  local mode=$1 upstream=$2 i
  shift 2
  local pf=$TMP/proxy-$mode.port
  "$PYTHON" "$HERE/registry_proxy.py" --mode "$mode" --upstream "http://$upstream" \
    --port-file "$pf" --stats-file "$TMP/proxy-$mode.stats" "$@" >"$TMP/proxy-$mode.log" 2>&1 &
  PIDS+=($!)
  for ((i = 0; i < 200; i++)); do
    [[ -s $pf ]] && { ADDR="127.0.0.1:$(cat "$pf")"; return 0; }
    sleep 0.05
  done
  echo "registry_env: proxy $mode did not start" >&2
  return 1
}

make_tls() {
  mkdir -p "$TMP/tls"
  (
    cd "$TMP/tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=lazyblob test CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key \
      -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile ext.cnf -out server.pem 2>/dev/null
  )
}

USER_NAME=lbtest
PASSWORD="s3cret-$RANDOM$RANDOM"
htpasswd -Bbn "$USER_NAME" "$PASSWORD" >"$TMP/htpasswd" 2>/dev/null
make_tls

start_registry plain && LB_REG_PLAIN=$ADDR
start_registry auth auth && LB_REG_AUTH=$ADDR
start_registry tls tls && LB_REG_TLS=$ADDR

auth_json() {  # host user password
  printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$1" "$(printf '%s:%s' "$2" "$3" | base64 -w0)"
}
start_proxy bearer "$LB_REG_PLAIN" --user "$USER_NAME" --password "$PASSWORD"
LB_PROXY_BEARER=$ADDR
{
  printf '{"auths": {"%s": {"auth": "%s"},\n' "$LB_REG_AUTH" "$(printf '%s:%s' "$USER_NAME" "$PASSWORD" | base64 -w0)"
  printf '  "%s": {"username": "%s", "password": "%s"}}}\n' "$LB_PROXY_BEARER" "$USER_NAME" "$PASSWORD"
} >"$TMP/auth.json"
auth_json "$LB_REG_AUTH" "$USER_NAME" "wrong-$PASSWORD" >"$TMP/badauth.json"

start_proxy strip-range "$LB_REG_PLAIN" && LB_PROXY_NORANGE=$ADDR
start_proxy flip "$LB_REG_PLAIN" && LB_PROXY_FLIP=$ADDR
start_proxy hang "$LB_REG_PLAIN" && LB_PROXY_HANG=$ADDR
start_proxy flaky "$LB_REG_PLAIN" && LB_PROXY_FLAKY=$ADDR
LB_PROXY_SWITCH_DOWN=$TMP/switch.down
start_proxy switch "$LB_REG_PLAIN" --down-file "$LB_PROXY_SWITCH_DOWN" && LB_PROXY_SWITCH=$ADDR
LB_REG_DOWN=127.0.0.1:$(free_port)
start_proxy pass "$LB_REG_PLAIN" --rtt-ms "${REGISTRY_ENV_SLOW_RTT_MS:-0}" \
  --mbit "${REGISTRY_ENV_SLOW_MBIT:-16}"
LB_PROXY_SLOW=$ADDR

export LB_REG_PLAIN LB_REG_AUTH LB_REG_TLS LB_PROXY_NORANGE LB_PROXY_FLIP LB_PROXY_HANG LB_PROXY_FLAKY \
  LB_PROXY_BEARER LB_REG_DOWN LB_PROXY_SLOW LB_PROXY_SWITCH LB_PROXY_SWITCH_DOWN
export LB_REG_AUTH_FILE=$TMP/auth.json LB_REG_BADAUTH_FILE=$TMP/badauth.json
export LB_REG_CA=$TMP/tls/ca.pem LB_REG_LOG_PLAIN=$TMP/plain/log LB_REG_TMP=$TMP/scratch
mkdir -p "$LB_REG_TMP"

# If this script is killed without a chance to clean up (SIGKILL by a test driver), a
# watchdog still ends the daemons within a second.
(
  trap '' INT TERM
  while kill -0 $$ 2>/dev/null; do sleep 1; done
  kill "${PIDS[@]}" 2>/dev/null
) </dev/null >/dev/null 2>&1 &
WATCHDOG=$!

set +e
"$@"
status=$?
set -e
exit $status
