#!/usr/bin/env bash
# `lazyblob stat --prometheus` (node_exporter's textfile collector) must pass Prometheus'
# own linter, `promtool check metrics`, and be the same nine lazyblob_store_* families the
# daemon serves (metrics/store_gauges.h writes both). Exit 77 (skip) without promtool.
set -euo pipefail
LAZYBLOB=${LAZYBLOB_BIN:?LAZYBLOB_BIN not set}
command -v promtool >/dev/null || { echo "SKIP: no promtool (apt-get install prometheus)"; exit 77; }
tmp=$(mktemp -d /var/tmp/lazyblob-promtool-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

head -c 300000 /dev/urandom >"$tmp/blob"
"$LAZYBLOB" --store "$tmp/store" import --force -q "$tmp/blob" --id a
"$LAZYBLOB" --store "$tmp/store" stat --prometheus >"$tmp/stat.prom"
promtool check metrics <"$tmp/stat.prom"
families=$(grep -c '^# TYPE lazyblob_store_' "$tmp/stat.prom")
[[ $families == 9 ]] || { echo "FAIL: $families lazyblob_store_* families, want 9"; exit 1; }
# An empty store too (ratios must not be NaN or Inf).
"$LAZYBLOB" --store "$tmp/empty" init -q
"$LAZYBLOB" --store "$tmp/empty" stat --prometheus | promtool check metrics
if grep -qiE 'nan|inf' "$tmp/stat.prom"; then echo "FAIL: NaN/Inf in the exposition"; exit 1; fi
echo "PASS: stat --prometheus passes promtool check metrics (9 families)"
