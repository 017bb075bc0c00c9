#!/bin/sh
# Helpers shared by the guest driver (run.sh) and the scenario files.
#
# A scenario file registers scenarios with `register NAME TIMEOUT_S` and defines
# one function per scenario, named sc_NAME with '-' turned into '_'. The function
# runs in its own session (process group) with:
#   $SC_NAME  scenario name          $SC_DIR  scratch dir (tmpfs), kept as logs
#   $CACHE    fresh cache dir on the ext4 disk (/cache/NAME)
#   $MNT      fresh mount point (/mnt/NAME)    $FSID  a fsid unique to the scenario
#   $IMAGES   host-built images + manifests (/e2e/images)
# It ends by returning 0 (PASS), or calls fail "reason" / skip "reason".
# `fact KEY VALUE` records an observation, printed as "@@E2E FACT name KEY=VALUE".
# Everything left running in the group is SIGKILLed and every mount under /mnt
# is unmounted after the scenario, whatever its outcome.

SCENARIOS=${SCENARIOS:-}
IMAGES=/e2e/images
PROBE=/e2e/bin/ondemand_probe
LAZYBLOB=${LAZYBLOB:-/e2e/bin/lazyblob}
LAZYBLOBD=${LAZYBLOBD:-/e2e/bin/lazyblobd}

register() { SCENARIOS="$SCENARIOS $1:$2"; }

log() { echo "[$SC_NAME] $*"; }

fail() {
  echo "$*" >"$SC_DIR/reason"
  echo 1 >"$SC_DIR/rc"
  exit 1
}

skip() {
  echo "$*" >"$SC_DIR/reason"
  echo 77 >"$SC_DIR/rc"
  exit 77
}

fact() { echo "$1=$2" >>"$SC_DIR/facts"; }

now_ms() { awk '{printf "%d\n", $1 * 1000}' /proc/uptime; }

# wait_for_file FILE TIMEOUT_S: polls every 0.1 s.
wait_for_file() {
  _n=0
  while [ ! -e "$1" ]; do
    _n=$((_n + 1))
    [ $_n -gt $(($2 * 10)) ] && return 1
    usleep 100000
  done
  return 0
}

scenario_setup() {
  SC_NAME=$1
  SC_DIR=/tmp/sc/$SC_NAME
  CACHE=/cache/$SC_NAME
  MNT=/mnt/$SC_NAME
  FSID=$(echo "$SC_NAME" | tr -c 'a-zA-Z0-9\n' '_')
  rm -rf "$CACHE"
  mkdir -p "$SC_DIR" "$CACHE" "$MNT"
  cd "$SC_DIR" || exit 1
}

# start_probe ARGS...: runs the probe daemon bound to $CACHE in the background,
# logging to $SC_DIR/probe.log; waits until it is bound. Sets PROBE_PID.
start_probe() {
  rm -f "$SC_DIR/probe.ready"
  "$PROBE" --cache-dir "$CACHE" --log "$SC_DIR/probe.log" --ready "$SC_DIR/probe.ready" "$@" \
    >>"$SC_DIR/probe.out" 2>&1 &
  PROBE_PID=$!
  if ! wait_for_file "$SC_DIR/probe.ready" 10; then
    fail "probe did not bind: $(grep FATAL "$SC_DIR/probe.log" 2>/dev/null | head -1)"
  fi
}

stop_probe() {
  [ -n "$PROBE_PID" ] || return 0
  kill -TERM "$PROBE_PID" 2>/dev/null
  wait "$PROBE_PID" 2>/dev/null
  PROBE_PID=
}

# mount_fsid FSID DIR [EXTRA_OPTS]: mount -t erofs none -o fsid=FSID[,EXTRA].
mount_fsid() {
  _o="fsid=$1"
  [ -n "$3" ] && _o="$_o,$3"
  mount -t erofs none -o "$_o" "$2" 2>"$SC_DIR/mount.err"
}

# check_tree DIR MANIFEST: every file of MANIFEST (sha256sum format, paths
# relative to the tree root) has the right hash, and DIR holds no other file.
check_tree() {
  (cd "$1" && sha256sum -c "$2" >"$SC_DIR/check.out" 2>&1) || {
    echo "$(grep -v ': OK$' "$SC_DIR/check.out" | head -3 | tr '\n' ';')"
    return 1
  }
  (cd "$1" && find . -type f | sed 's|^\./||' | sort) >"$SC_DIR/files.have"
  sed 's/^[0-9a-f]*  //' "$2" | sort >"$SC_DIR/files.want"
  if ! cmp -s "$SC_DIR/files.have" "$SC_DIR/files.want"; then
    echo "file list differs from the manifest"
    return 1
  fi
  return 0
}

# probe_log_field LINE_PREFIX FIELD: values of FIELD=... on log lines starting
# with LINE_PREFIX, one per line.
probe_log_field() {
  grep "^$1 " "$SC_DIR/probe.log" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"
}

# cache_files: the committed cache files under $CACHE (after umount).
cache_files() { find "$CACHE/cache" -type f -name 'D*' 2>/dev/null; }

# run_scenario NAME TIMEOUT_S (driver side).
run_scenario() {
  _name=$1
  _tmo=$2
  _dir=/tmp/sc/$_name
  rm -rf "$_dir"
  mkdir -p "$_dir"
  _t0=$(now_ms)
  timeout -s KILL "$_tmo" setsid /bin/sh /e2e/run-one.sh "$_name" >"$_dir/out" 2>&1
  _pg=$(cat "$_dir/pgid" 2>/dev/null)
  [ -n "$_pg" ] && kill -KILL -"$_pg" 2>/dev/null
  # Unmount whatever the scenario left mounted (lazily if still busy).
  for _m in $(awk '$2 ~ "^/mnt/" {print $2}' /proc/mounts | sort -r); do
    umount "$_m" 2>/dev/null || umount -l "$_m" 2>/dev/null
  done
  _ms=$(($(now_ms) - _t0))
  _rc=$(cat "$_dir/rc" 2>/dev/null)
  _reason=$(head -c 400 "$_dir/reason" 2>/dev/null | tr '\n' ' ')
  if [ -f "$_dir/facts" ]; then
    while read -r _f; do echo "@@E2E FACT $_name $_f"; done <"$_dir/facts"
  fi
  case "$_rc" in
    0) echo "@@E2E PASS $_name (${_ms} ms)" ;;
    77) echo "@@E2E SKIP $_name: $_reason" ;;
    "") echo "@@E2E FAIL $_name: timed out after ${_tmo}s (killed)" ;;
    *) echo "@@E2E FAIL $_name: ${_reason:-exit $_rc}" ;;
  esac
  if [ "$_rc" != 0 ] && [ "$_rc" != 77 ]; then
    tail -n 15 "$_dir/out" | sed "s/^/@@E2E LOG $_name: /"
  fi
  rm -rf "/cache/e2e-logs/$_name"
  cp -r "$_dir" "/cache/e2e-logs/$_name" 2>/dev/null
}
