# shellcheck shell=bash
# Sourced by run.sh: one function per tool, each importing the corpus images into a fresh
# store under $1 and printing one JSON object (a "run record") on stdout:
#   {"tool", "seconds", "logical_bytes", "unique_bytes", "chunks", "unique_chunks",
#    "store_du_bytes", "store_file_bytes", ...tool-specific extras}
# seconds is the wall time of the imports only (store creation of borg init excluded,
# lazyblob creates its store inside the first import, casync needs none). All tools use
# the same chunk geometry: content-defined, 16 KiB min, 64 KiB average, 256 KiB max, and
# zstd level 3 for the stored chunks.
# Images are passed in IMAGES (bash array), their names (ids/archive names) in NAMES.

now() { date +%s.%N; }

# CPU seconds (user + system) of shell $SELF's waited-for children so far: the
# difference around an import loop is the tool's CPU time, a figure less disturbed by a
# busy machine than wall time.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($16 + $17) / hz}' "/proc/$SELF/stat"
}

# du -sb of the given paths (apparent sizes, directories included) and the sum of the
# regular files' sizes (no directory entries), as "DU FILES".
measure_paths() {
  local du files
  du=$(du -sbc "$@" | tail -1 | cut -f1)
  files=$(find "$@" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}')
  echo "$du $files"
}

# casync: one shared chunk store for both images, a .caibx index per image (counted in
# the stored bytes: it is needed to restore the image).
run_casync() {
  local dir="$1" i t0 t1 c0 c1
  mkdir -p "$dir/store"
  SELF=$BASHPID
  c0=$(cpu_seconds)
  t0=$(now)
  for i in "${!IMAGES[@]}"; do
    casync make --chunk-size=16384:65536:262144 --store="$dir/store" \
      "$dir/${NAMES[$i]}.caibx" "${IMAGES[$i]}" >/dev/null
  done
  t1=$(now)
  c1=$(cpu_seconds)
  read -r du files < <(measure_paths "$dir")
  local chunk_files
  chunk_files=$(measure_paths "$dir/store" | cut -d' ' -f2)
  python3 "$HERE/caibx_stats.py" "$dir"/*.caibx |
    python3 -c 'import json,sys
s = json.load(sys.stdin)
s.update(tool="casync", seconds=float(sys.argv[1]) - float(sys.argv[2]),
         store_du_bytes=int(sys.argv[3]), store_file_bytes=int(sys.argv[4]),
         casync_version=sys.argv[5], cpu_seconds=float(sys.argv[6]) - float(sys.argv[7]),
         compressed_unique_bytes=int(sys.argv[8]))
print(json.dumps(s))' "$t1" "$t0" "$du" "$files" "$(casync --version | tail -1)" "$c1" "$c0" \
    "$chunk_files"
}

# borg: one unencrypted repo for both images, one archive per image. Its client-side
# cache (BORG_BASE_DIR) is kept beside the repo and reported apart, not in the stored bytes.
run_borg() {
  local dir="$1" i t0 t1 c0 c1
  export BORG_BASE_DIR="$dir/borg-base" BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes \
    BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_DISPLAY_PASSPHRASE=no
  borg init -e none "$dir/repo" >/dev/null
  SELF=$BASHPID
  c0=$(cpu_seconds)
  t0=$(now)
  for i in "${!IMAGES[@]}"; do
    borg create --chunker-params buzhash,14,18,16,4095 --compression zstd,3 \
      "$dir/repo::${NAMES[$i]}" "${IMAGES[$i]}" >/dev/null
  done
  t1=$(now)
  c1=$(cpu_seconds)
  read -r du files < <(measure_paths "$dir/repo")
  local cache_du
  cache_du=$(du -sb "$BORG_BASE_DIR" | cut -f1)
  borg info --json "$dir/repo" |
    python3 -c 'import json,sys
st = json.load(sys.stdin)["cache"]["stats"]
print(json.dumps(dict(tool="borg", seconds=float(sys.argv[1]) - float(sys.argv[2]),
    logical_bytes=st["total_size"], unique_bytes=st["unique_size"],
    compressed_unique_bytes=st["unique_csize"], chunks=st["total_chunks"],
    unique_chunks=st["total_unique_chunks"], store_du_bytes=int(sys.argv[3]),
    store_file_bytes=int(sys.argv[4]), client_cache_du_bytes=int(sys.argv[5]),
    borg_version=sys.argv[6], cpu_seconds=float(sys.argv[7]) - float(sys.argv[8]))))' \
    "$t1" "$t0" "$du" "$files" "$cache_du" "$(borg --version)" "$c1" "$c0"
}

# lazyblob: one store for both images (created by the first import), blob id = name.
run_lazyblob() {
  local dir="$1" i t0 t1 c0 c1
  SELF=$BASHPID
  c0=$(cpu_seconds)
  t0=$(now)
  for i in "${!IMAGES[@]}"; do
    "$LAZYBLOB_BIN" --store "$dir/store" import "${IMAGES[$i]}" --id "${NAMES[$i]}" \
      --chunker cdc --avg-chunk 64K --min-chunk 16K --max-chunk 256K --zstd-level 3 \
      --no-progress --json >"$dir/import-${NAMES[$i]}.json"
  done
  t1=$(now)
  c1=$(cpu_seconds)
  read -r du files < <(measure_paths "$dir/store")
  "$LAZYBLOB_BIN" --store "$dir/store" stat --json >"$dir/stat.json"
  python3 - "$dir/stat.json" "$t1" "$t0" "$du" "$files" "$c1" "$c0" <<'EOF'
import json, sys
st = json.load(open(sys.argv[1]))
print(json.dumps(dict(tool="lazyblob", seconds=float(sys.argv[2]) - float(sys.argv[3]),
    logical_bytes=st["logical_bytes"], unique_bytes=st["unique_bytes"],
    compressed_unique_bytes=st["stored_bytes"], unique_chunks=st["chunks"],
    blobs=st["blobs"], store_du_bytes=int(sys.argv[4]), store_file_bytes=int(sys.argv[5]),
    cpu_seconds=float(sys.argv[6]) - float(sys.argv[7]), lazyblob_stat=st)))
EOF
}
