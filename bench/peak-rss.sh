#!/usr/bin/env bash
# Peak RSS of one optimizer step of each reference case at its preset (batch 1024, one epoch of
# 1024 images, backend onednn) with the given micro-batch, as /usr/bin/time reports it for the
# whole process. A step's peak does not depend on how many micro-batches it has.
#   bench/peak-rss.sh DATA MICRO_BATCH [CASE ...]     e.g. bench/peak-rss.sh ../shared/datasets/cifar-10-binary.tar.gz 128
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?CIFAR-10 archive or folder}
micro=${2:?micro-batch}
shift 2
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(1 2 3 4 5 6 7)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf 'case\tmicro-batch\tpeak RSS (GB)\twall (s)\n'
for n in "${cases[@]}"; do
  start=$(date +%s)
  if ! /usr/bin/time -f %M -o "$out/rss" node --import tsx src/cli/main.ts train --case "$n" --epochs 1 --train-limit 1024 \
    --test-limit 1024 --micro-batch "$micro" --weights none --backend onednn --data "$data" --no-verify --out "$out/$n" \
    >"$out/log" 2>&1; then
    tail -5 "$out/log" >&2
    exit 1
  fi
  kb=$(tail -1 "$out/rss")
  printf '%s\t%s\t%.2f\t%s\n' "$n" "$micro" "$(echo "$kb / 1000000" | bc -l)" "$(( $(date +%s) - start ))"
done
