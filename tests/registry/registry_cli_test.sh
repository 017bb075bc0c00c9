#!/usr/bin/env bash
# `lazyblob push / pull / ls --registry` end to end against the REAL registries that
# registry_env.sh starts (run this script through it; ctest does). Two EROFS images are
# made with mkfs.erofs from trees made here; every byte is compared after a round trip.
# Failure paths check the exit code, the one stderr line and that the local store holds
# nothing afterwards. Prints PASS/FAIL lines and "N passed, N failed".
#
#   registry_env.sh registry_cli_test.sh LAZYBLOB_BIN
set -uo pipefail

LB=${1:?usage: registry_env.sh $0 LAZYBLOB_BIN}
: "${LB_REG_PLAIN:?run through registry_env.sh}"
if [[ -z ${PYTHON:-} ]]; then
  if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=$(command -v python3); fi
fi
command -v mkfs.erofs >/dev/null || { echo "mkfs.erofs missing (erofs-utils)"; exit 77; }
W=${KEEP_DIR:-$LB_REG_TMP}/cli
mkdir -p "$W"
passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() {  # description, command...
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
json() {  # FILE, python expression over j
  "$PYTHON" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# run NAME ARGS...: lazyblob with stdout/stderr in $W/NAME.{out,err}, exit code in $W/NAME.rc
run() {
  local name=$1
  shift
  "$LB" "$@" >"$W/$name.out" 2>"$W/$name.err"
  echo $? >"$W/$name.rc"
}
rc() { cat "$W/$1.rc"; }
err_lines() { grep -c . "$W/$1.err"; }
store_is_empty() {  # STORE: no blobs and no chunks (or no store at all)
  [[ ! -d $1/packs ]] && return 0
  "$LB" --store "$1" stat --json >"$W/empty.json" 2>/dev/null || return 1
  [[ $(json "$W/empty.json" 'j["blobs"] + j["chunks"]') == 0 ]]
}

# --- two EROFS images: v2 changes one file and adds another ---------------------------
make_tree() {  # DIR SEED
  mkdir -p "$1/bin" "$1/lib/python3" "$1/etc" "$1/usr/share/doc"
  "$PYTHON" - "$1" "$2" <<'PY'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
words = [bytes(rnd.choice(b"abcdefghij ") for _ in range(8)) for _ in range(500)]
for i in range(40):
    size = rnd.choice([300, 5000, 70000, 300000])
    data = b" ".join(rnd.choice(words) for _ in range(size // 9)) if i % 2 else rnd.randbytes(size)
    open(os.path.join(root, "lib/python3", f"mod{i}.py"), "wb").write(data)
open(os.path.join(root, "bin/app"), "wb").write(rnd.randbytes(2_000_000))
open(os.path.join(root, "etc/app.conf"), "w").write("answer = 42\n")
os.symlink("../bin/app", os.path.join(root, "usr/share/doc/app-link"))
PY
}
make_tree "$W/tree1" 1
cp -a "$W/tree1" "$W/tree2"
"$PYTHON" -c 'import random,sys; open(sys.argv[1],"wb").write(random.Random(5).randbytes(400000))' \
  "$W/tree2/lib/python3/new.so"
printf 'answer = 43\n' >"$W/tree2/etc/app.conf"
mkfs.erofs --quiet "$W/v1.img" "$W/tree1" >/dev/null 2>&1 && mkfs.erofs --quiet "$W/v2.img" "$W/tree2" >/dev/null 2>&1 ||
  { echo "FAIL: mkfs.erofs"; exit 1; }

SRC=$W/src
"$LB" --store "$SRC" import "$W/v1.img" --id app:v1 >/dev/null 2>&1
"$LB" --store "$SRC" stat --json >"$W/stat1.json"
"$LB" --store "$SRC" import "$W/v2.img" --id app:v2 >/dev/null 2>&1
"$LB" --store "$SRC" stat --json >"$W/stat2.json"
REG=http://$LB_REG_PLAIN/cli/app

# --- push: v1 uploads all its chunks, v2 only what v1 lacks (exact numbers) -------------
run push1 --store "$SRC" push --registry "$REG" app:v1 --json
check "push v1 exits 0" test "$(rc push1)" = 0
check "push v1 uploads every stored byte of v1" \
  test "$(json "$W/push1.out" 'j["blobs"][0]["uploaded_bytes"]')" = "$(json "$W/stat1.json" 'j["stored_bytes"]')"
check "push v1 uploads every chunk of v1" \
  test "$(json "$W/push1.out" 'j["blobs"][0]["uploaded_chunks"]')" = "$(json "$W/stat1.json" 'j["chunks"]')"
run push2 --store "$SRC" push --registry "$REG" app:v2 --json
check "push v2 exits 0" test "$(rc push2)" = 0
new_bytes=$(($(json "$W/stat2.json" 'j["stored_bytes"]') - $(json "$W/stat1.json" 'j["stored_bytes"]')))
new_chunks=$(($(json "$W/stat2.json" 'j["chunks"]') - $(json "$W/stat1.json" 'j["chunks"]')))
check "push v2 uploads exactly the $new_bytes bytes v1 lacks" \
  test "$(json "$W/push2.out" 'j["blobs"][0]["uploaded_bytes"]')" = "$new_bytes"
check "push v2 uploads exactly the $new_chunks chunks v1 lacks" \
  test "$(json "$W/push2.out" 'j["blobs"][0]["uploaded_chunks"]')" = "$new_chunks"
check "push v2 reports skipped bytes" \
  test "$(json "$W/push2.out" 'j["blobs"][0]["skipped_bytes"] > 0')" = True
run push3 --store "$SRC" push --registry "$REG" app:v1 app:v2
check "pushing both again uploads nothing" \
  test "$(rc push3)" = 0 -a "$(grep -c 'nothing uploaded' "$W/push3.out")" = 2

# --- ls --registry -------------------------------------------------------------------
run ls --store "$SRC" ls --registry "$REG" --json
check "ls --registry lists both ids" \
  test "$(json "$W/ls.out" '",".join(b["id"] for b in j["blobs"])')" = "app:v1,app:v2"
check "ls --registry has v2's size" \
  test "$(json "$W/ls.out" 'j["blobs"][1]["size"]')" = "$(stat -c %s "$W/v2.img")"
run lsh ls --registry "$REG"
check "ls --registry human table" grep -q '^app:v2 ' "$W/lsh.out"

# --- pull into a fresh store, export, compare every byte -------------------------------
DST=$W/dst
run pull1 --store "$DST" pull --registry "$REG" app:v1 --json
run pull2 --store "$DST" pull --registry "$REG" app:v2 --json
check "pull v1 and v2 exit 0" test "$(rc pull1)$(rc pull2)" = 00
check "pull v2 fetches only the chunks v1 lacks" \
  test "$(json "$W/pull2.out" 'j["fetched_chunks"]')" = "$new_chunks"
"$LB" --store "$DST" export app:v1 "$W/v1.out" >/dev/null 2>&1
"$LB" --store "$DST" export app:v2 "$W/v2.out" >/dev/null 2>&1
check "v1 round trip is byte-identical" cmp -s "$W/v1.img" "$W/v1.out"
check "v2 round trip is byte-identical" cmp -s "$W/v2.img" "$W/v2.out"
check "pulled store verifies" "$LB" --store "$DST" verify --no-progress

# --- a server that ignores Range -------------------------------------------------------
run norange --store "$W/norange" pull --registry "http://$LB_PROXY_NORANGE/cli/app" app:v2 \
  --max-request 256K --json
check "Range ignored: pull exits 0" test "$(rc norange)" = 0
check "Range ignored: reported" test "$(json "$W/norange.out" 'j["range_ignored"] > 0')" = True
"$LB" --store "$W/norange" export app:v2 "$W/norange.img" >/dev/null 2>&1
check "Range ignored: byte-identical" cmp -s "$W/v2.img" "$W/norange.img"

# --- failures: one clear line, the right exit code, nothing in the store ----------------
run unknown --store "$W/s404" pull --registry "$REG" no-such-blob
check "unknown blob: exit 2" test "$(rc unknown)" = 2
check "unknown blob: one line naming it" \
  test "$(err_lines unknown)" = 1 -a "$(grep -c 'no-such-blob' "$W/unknown.err")" = 1
check "unknown blob: store empty" store_is_empty "$W/s404"

run flip --store "$W/sflip" pull --registry "http://$LB_PROXY_FLIP/cli/app" app:v1
check "flipped byte: exit 1" test "$(rc flip)" = 1
check "flipped byte: refused by the hash" grep -q 'hash mismatch\|SHA-256 mismatch\|zstd' "$W/flip.err"
check "flipped byte: store empty" store_is_empty "$W/sflip"

curl -s -o /dev/null -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
  --data '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.lazyblob.blob.v1","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[{"mediaType":"application/vnd.lazyblob.chunkmap.v1","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}],"annotations":{"io.lazyblob.blob.id":"broken","io.lazyblob.blob.size":"1","io.lazyblob.blob.chunks":"1"}}' \
  "http://$LB_REG_PLAIN/v2/cli/app/manifests/lb-broken"
run malformed --store "$W/smal" pull --registry "$REG" broken --json
check "malformed chunk map: exit 1" test "$(rc malformed)" = 1
check "malformed chunk map: says so" grep -q 'chunk map' "$W/malformed.err"
check "malformed: --json error object" test "$(json "$W/malformed.out" 'j["error"]["code"]')" = Malformed
check "malformed: store empty" store_is_empty "$W/smal"

AREG=http://$LB_REG_AUTH/cli/app
run apush --store "$SRC" push --registry "$AREG" --auth-file "$LB_REG_AUTH_FILE" app:v1
check "Basic auth from --auth-file: push exits 0" test "$(rc apush)" = 0
run apull --store "$W/sauth" pull --registry "$AREG" --auth-file "$LB_REG_AUTH_FILE" app:v1
check "Basic auth: pull exits 0" test "$(rc apull)" = 0
run bad --store "$W/sbad" pull --registry "$AREG" --auth-file "$LB_REG_BADAUTH_FILE" app:v1 --json
check "wrong credentials: exit 2" test "$(rc bad)" = 2
check "wrong credentials: one line with 401" \
  test "$(err_lines bad)" = 1 -a "$(grep -c '401' "$W/bad.err")" = 1
check "wrong credentials: store empty" store_is_empty "$W/sbad"
HOME=$W/nohome DOCKER_CONFIG= run anon --store "$W/sanon" ls --registry "$AREG"
check "no credentials: exit 2" test "$(rc anon)" = 2
run missingauth --store "$W/sanon" ls --registry "$AREG" --auth-file "$W/none.json"
check "missing --auth-file: exit 2" test "$(rc missingauth)" = 2

run tls --store "$SRC" push --registry "$LB_REG_TLS/cli/app" --ca-file "$LB_REG_CA" app:v1
check "TLS with --ca-file: push exits 0" test "$(rc tls)" = 0
run notls --store "$SRC" ls --registry "$LB_REG_TLS/cli/app"
check "TLS without the CA: exit 2 naming --ca-file" \
  test "$(rc notls)" = 2 -a "$(grep -c -- '--ca-file' "$W/notls.err")" = 1

t0=$SECONDS
run down --store "$W/sdown" pull --registry "http://$LB_PROXY_HANG/cli/app" app:v1 \
  --timeout 1 --retries 1
check "registry not answering: exit 3 after 2 attempts" \
  test "$(rc down)" = 3 -a "$(grep -c '2 attempts' "$W/down.err")" = 1
echo "  (gave up after $((SECONDS - t0)) s with --timeout 1 --retries 1)"
check "registry not answering: store empty" store_is_empty "$W/sdown"
run refused --store "$W/sdown" ls --registry "http://$LB_REG_DOWN/cli/app" --retries 0
check "registry down: exit 3" test "$(rc refused)" = 3

# --- kill -9 during a pull: the store verifies, holds no blob, and a new pull completes --
"$LB" --store "$W/scrash" pull --registry "http://$LB_PROXY_SLOW/cli/app" app:v1 \
  --parallel 1 --max-request 256K >/dev/null 2>&1 &
pull_pid=$!
sleep 1.5
kill -9 "$pull_pid" 2>/dev/null
wait "$pull_pid"
check "kill -9 hit the pull while it ran" test $? = 137
check "after kill -9: the store verifies" "$LB" --store "$W/scrash" verify --no-progress
check "after kill -9: no blob, no chunk" store_is_empty "$W/scrash"
run repull --store "$W/scrash" pull --registry "$REG" app:v1
"$LB" --store "$W/scrash" export app:v1 "$W/crash.img" >/dev/null 2>&1
check "after kill -9: a new pull is byte-identical" cmp -s "$W/v1.img" "$W/crash.img"

# --- access records (issue 16): push publishes and merges, pull brings them back ------
# lazyblobd writes records; here one is written the way store/trace_dir.h lays it out.
write_record() {  # STORE ID BLOB_SIZE BLOCK...
  mkdir -p "$1/traces"
  "$PYTHON" - "$@" <<'PY'
import ctypes, struct, sys
store, rid, size, blocks = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), [int(b) for b in sys.argv[4:]]
class H(ctypes.Structure):
    _fields_ = [("low", ctypes.c_uint64), ("high", ctypes.c_uint64)]
lib = ctypes.CDLL("libxxhash.so.0")
lib.XXH3_128bits.restype = H
lib.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
h = lib.XXH3_128bits(rid, len(rid))
out = bytes([len(rid)]) + rid + b"LBTR\x01" + struct.pack("<QI", size, len(blocks))
prev = 0
for b in blocks:
    d = b - prev
    z = d << 1 if d >= 0 else ((-d) << 1) - 1
    while True:
        low, z = z & 0x7F, z >> 7
        out += bytes([low | (0x80 if z else 0)])
        if not z:
            break
    prev = b
open(f"{store}/traces/{h.high:016x}{h.low:016x}.trace", "wb").write(out)
PY
}
v1_size=$(json "$W/push1.out" 'j["blobs"][0]["size"]')
write_record "$SRC" app:v1 "$v1_size" 10 0 5
run tls1 --store "$SRC" ls --registry "$REG" --json
run tshow0 --store "$SRC" trace show app:v1 --json
check "trace show reads the record lazyblobd would write" \
  test "$(json "$W/tshow0.out" 'j["offsets"]')" = "[40960, 0, 20480]"
run tpush1 --store "$SRC" push --registry "$REG" app:v1 --json
check "push publishes the record next to the blob" \
  test "$(json "$W/tpush1.out" '(j["blobs"][0]["trace"]["chunks"], j["blobs"][0]["trace"]["merged"])')" = "(3, False)"
write_record "$SRC" app:v1 "$v1_size" 10 7
run tpush2 --store "$SRC" push --registry "$REG" app:v1 --json
check "a second record is merged into the registry's, not written over it" \
  test "$(json "$W/tpush2.out" '(j["blobs"][0]["trace"]["chunks"], j["blobs"][0]["trace"]["merged"])')" = "(4, True)"
run tls2 --store "$SRC" ls --registry "$REG" --json
check "records are not listed as blobs" \
  test "$(json "$W/tls2.out" '[b["id"] for b in j["blobs"]]')" = "$(json "$W/tls1.out" '[b["id"] for b in j["blobs"]]')"
run tpull --store "$W/strace" pull --registry "$REG" app:v1 --json
check "pull brings the merged record along" test "$(json "$W/tpull.out" 'j["trace_chunks"]')" = 4
run tshow --store "$W/strace" trace show app:v1 --json
check "the pulled record keeps the first order, 7 (read after 10) placed after 10" \
  test "$(json "$W/tshow.out" 'j["offsets"]')" = "[40960, 28672, 0, 20480]"

# --- credentials never appear in any output -------------------------------------------
password=$("$PYTHON" -c 'import json,sys,base64; a=json.load(open(sys.argv[1]))["auths"]; print(base64.b64decode(next(iter(a.values()))["auth"]).decode().split(":",1)[1])' "$LB_REG_AUTH_FILE")
check "no password or auth blob in any output" \
  bash -c '! grep -rqF -e "$1" -e "$2" "$3"/*.out "$3"/*.err' _ "$password" \
  "$(json "$LB_REG_AUTH_FILE" 'next(iter(j["auths"].values()))["auth"]')" "$W"

echo "$passed passed, $failed failed"
((failed == 0))
