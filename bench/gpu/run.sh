#!/usr/bin/env bash
# The GPU measurement: on an x86-64 machine with an NVIDIA GPU, no Node.js and no network, unpacks
# what bench/gpu/prepare.sh bundled, then measures on the same GPU, in this order:
#   1. selab bench --backends webgpu --json: the five bench models, training and inference
#   2. the PyTorch peer (torch_peer.py --device cuda): fp32, channels-last, cudnn.benchmark, one
#      row per model with TF32 off and one with TF32 allowed
#   3. a per-kernel GPU profile of one training step of plain10 and MobileNet (tf.profile)
#   4. one full epoch of case 1 and of case 6 at their presets (batch 1024; --weights none, since
#      ImageNet weights cannot be fetched there and do not change the speed)
#   5. summary.txt / summary.json: webgpu against onednn (the floor: ≥ 10×) and against PyTorch
#      (the goal: ≥ 0.5× TF32 off), and the seed's study (7 cases × 100 epochs) projected
# Everything (JSON, logs, the runs' files) goes under $OUT (default ./gpu-out). A failed part is
# logged and the rest still runs; the exit status is that of the first failure.
#
# Options: --steps N, --warmup N (bench, default 5 and 10), --batch N (every bench model),
# --models LIST, --train-limit N / --test-limit N (shorter "epochs", for a smoke test),
# --train-args 'FLAGS' (more flags for the two `selab train` runs, e.g. '--batch-size 8'),
# --no-bench, --no-torch, --no-profile, --no-epochs. Environment: OUT; SELAB_DATA (CIFAR-10 as an archive or folder;
# otherwise a random stand-in of the same size is made, see make-data.mjs); PYTHON (default: the
# first of python3, /usr/bin/python3, python that imports torch); VK_DRIVER_FILES (the NVIDIA Vulkan ICD file, found on its own when unset).
#
# Smoke test without a GPU (SwiftShader, as in CI):
#   bench/gpu/prepare.sh && VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json \
#   OUT=/tmp/gpu-out bench/gpu/run.sh --steps 1 --warmup 0 --batch 2 --models plain10,mobilenet \
#     --train-limit 8 --test-limit 8 --train-args '--batch-size 8'
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ -f "$HERE/node.xz" ]; then BUNDLE=$HERE; else BUNDLE=${SELAB_GPU_BUNDLE:-$HERE/../../.cache/gpu-bundle}; fi
BUNDLE=$(cd "$BUNDLE" 2>/dev/null && pwd) || { echo "run.sh: no bundle at $BUNDLE: run bench/gpu/prepare.sh first" >&2; exit 1; }
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# The first Python that has PyTorch (it also unpacks what xz would, where xz is missing).
if [ -z "${PYTHON:-}" ]; then
  for p in python3 /usr/bin/python3 python; do "$p" -c 'import torch' 2>/dev/null && { PYTHON=$p; break; }; done
  PYTHON=${PYTHON:-python3}
fi

STEPS=5 WARMUP=10 BATCH= MODELS=plain10,plain10-se,vgg16-bn-se,mobilenet,mobilenet-se
TRAIN_LIMIT= TEST_LIMIT= TRAIN_ARGS= BENCH=1 TORCH=1 EPOCHS=1 PROFILE=1
while [ $# -gt 0 ]; do
  case $1 in
    --steps) STEPS=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --batch) BATCH=$2; shift ;;
    --models) MODELS=$2; shift ;;
    --train-limit) TRAIN_LIMIT=$2; shift ;;
    --test-limit) TEST_LIMIT=$2; shift ;;
    --train-args) TRAIN_ARGS=$2; shift ;;
    --no-bench) BENCH= ;;
    --no-torch) TORCH= ;;
    --no-epochs) EPOCHS= ;;
    --no-profile) PROFILE= ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

LOG=$OUT/run.log
: > "$LOG"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
STATUS=0
fail() { log "FAILED: $*"; [ "$STATUS" -ne 0 ] || STATUS=1; }
START=$(date +%s)

# --- unpacking -----------------------------------------------------------------------------------
WORK=${TMPDIR:-/tmp}/selab-gpu-$$
mkdir -p "$WORK/lib" "$WORK/node_modules/webgpu/dist/linux-x64"
trap 'rm -rf "$WORK"' EXIT
unxz_to() { # unxz_to FILE.xz DEST: xz where installed, else Python's lzma
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"; else "$PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}
log "unpacking $BUNDLE into $WORK"
unxz_to "$BUNDLE/node.xz" "$WORK/node" && chmod +x "$WORK/node" || { fail "unpacking node"; exit 1; }
unxz_to "$BUNDLE/selab.mjs.xz" "$WORK/selab.mjs" || { fail "unpacking selab"; exit 1; }
cp "$BUNDLE/package.json" "$BUNDLE/make-data.mjs" "$BUNDLE/summary.mjs" "$WORK/"
cp "$BUNDLE/node_modules/webgpu/index.js" "$BUNDLE/node_modules/webgpu/package.json" "$WORK/node_modules/webgpu/"
unxz_to "$BUNDLE/node_modules/webgpu/dist/linux-x64/dawn.node.xz" "$WORK/node_modules/webgpu/dist/linux-x64/dawn.node" || { fail "unpacking dawn.node"; exit 1; }
NODE=$WORK/node
SELAB=$WORK/selab.mjs

# The Vulkan loader: the system's, else the bundled Debian package's (a .deb is an ar archive
# holding data.tar.xz; Python unpacks it where dpkg-deb is absent).
if ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  log "Vulkan loader: the system's"
else
  deb=$(ls "$BUNDLE"/libvulkan1_*.deb | head -1)
  "$PYTHON" - "$deb" "$WORK/deb" <<'PY' || fail "unpacking $deb"
import io, os, sys, tarfile
deb, dest = sys.argv[1], sys.argv[2]
data = open(deb, "rb").read()
assert data[:8] == b"!<arch>\n", "not an ar archive"
pos = 8
while pos < len(data):
    name, size = data[pos:pos + 16].decode().strip().rstrip("/"), int(data[pos + 48:pos + 58])
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(dest)
    pos += 60 + size + (size & 1)
PY
  find "$WORK/deb" -name 'libvulkan.so.1*' -exec cp -P {} "$WORK/lib/" \;
  log "Vulkan loader: bundled $(basename "$deb")"
fi
export LD_LIBRARY_PATH=$WORK/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}

# dawn.node needs GLIBCXX_3.4.30; an older system C++ runtime gets the bundled one.
if ! (cd "$WORK" && "$NODE" --input-type=module -e 'await import("webgpu")') 2>"$WORK/dawn-load.txt" && grep -q GLIBCXX "$WORK/dawn-load.txt"; then
  unxz_to "$BUNDLE/libstdc++/libstdc++.so.6.xz" "$WORK/lib/libstdc++.so.6"
  log "C++ runtime: bundled libstdc++.so.6 (the system's is older than dawn.node needs)"
fi
(cd "$WORK" && "$NODE" --input-type=module -e 'await import("webgpu")') 2>>"$LOG" || fail "loading Dawn (dawn.node)"

# The NVIDIA Vulkan driver's ICD file: the usual folders, then the driver's own; failing those, a
# manifest written here for the driver library itself (libGLX_nvidia.so.0 carries its Vulkan ICD).
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  icd=$(ls /etc/vulkan/icd.d/nvidia_icd*.json /usr/share/vulkan/icd.d/nvidia_icd*.json /usr/local/share/vulkan/icd.d/nvidia_icd*.json 2>/dev/null | head -1)
  [ -n "$icd" ] || icd=$(find /usr /etc /opt -maxdepth 6 -name 'nvidia_icd*.json' 2>/dev/null | head -1)
  if [ -z "$icd" ]; then
    glx=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 / { print $NF; exit }')
    [ -n "$glx" ] || glx=$(find /usr /opt /lib* -maxdepth 5 -name 'libGLX_nvidia.so.0' 2>/dev/null | head -1)
    if [ -n "$glx" ]; then
      icd=$WORK/nvidia_icd.json
      printf '{ "file_format_version": "1.0.0", "ICD": { "library_path": "%s", "api_version": "1.3.0" } }\n' "$glx" > "$icd"
      log "Vulkan driver: no NVIDIA ICD file found; wrote one for $glx"
    fi
  fi
  if [ -n "$icd" ]; then export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd; log "Vulkan driver: $icd"; else log "Vulkan driver: no NVIDIA ICD file or libGLX_nvidia.so.0 found; leaving the search to the Vulkan loader"; fi
else
  log "Vulkan driver: ${VK_DRIVER_FILES:-$VK_ICD_FILENAMES} (from the environment)"
fi

# --- the machine -----------------------------------------------------------------------------------
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -a)"
  echo "node: $("$NODE" --version)"
  echo "selab: $(cat "$BUNDLE/COMMIT" 2>/dev/null || echo unknown)"
  echo "cpus: $(nproc)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
} > "$OUT/machine.txt" 2>&1
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
log "$(tr '\n' ' ' < "$OUT/machine.txt")"

selab() { (cd "$WORK" && "$NODE" --max-old-space-size=16384 "$SELAB" "$@"); }

# --- 1. webgpu bench -------------------------------------------------------------------------------
if [ -n "$BENCH" ]; then
  bench_args=(--models "$MODELS" --steps "$STEPS" --warmup "$WARMUP" --no-torch)
  [ -n "$BATCH" ] && bench_args+=(--batch "$BATCH")
  log "selab bench --backends webgpu ${bench_args[*]}"
  t0=$(date +%s)
  selab bench --backends webgpu --json "${bench_args[@]}" > "$OUT/bench-webgpu.json" 2> "$OUT/bench-webgpu.log" || fail "webgpu bench (see bench-webgpu.log)"
  log "webgpu bench: $(( $(date +%s) - t0 )) s; $(grep -h 'img/s' "$OUT/bench-webgpu.log" | tr '\n' ';')"
  if grep -q '"backend": "webgpu"' "$OUT/bench-webgpu.json" 2>/dev/null; then :; else fail "no webgpu rows: $(tail -3 "$OUT/bench-webgpu.log" | tr '\n' ' ')"; fi
fi

# --- 2. PyTorch on the same GPU ------------------------------------------------------------------
if [ -n "$TORCH" ]; then
  batches=$(for m in ${MODELS//,/ }; do case $m in plain10|plain10-se) b=128 ;; vgg16-bn-se) b=16 ;; *) b=32 ;; esac; echo -n "${BATCH:-$b},"; done)
  log "torch_peer.py --device cuda --tf32 both --models $MODELS --batches ${batches%,}"
  t0=$(date +%s)
  "$PYTHON" "$BUNDLE/torch_peer.py" --device cuda --tf32 both --models "$MODELS" --batches "${batches%,}" --steps "$STEPS" --warmup "$WARMUP" \
    > "$OUT/bench-torch-cuda.json" 2> "$OUT/bench-torch-cuda.log" || fail "PyTorch peer (see bench-torch-cuda.log)"
  log "PyTorch peer: $(( $(date +%s) - t0 )) s"
fi

# --- 3. where a webgpu training step's time goes -------------------------------------------------
if [ -n "$PROFILE" ]; then
  pmodels=$(echo "$MODELS" | tr ',' '\n' | grep -x 'plain10\|mobilenet' | paste -sd, -)
  if [ -n "$pmodels" ]; then
    log "selab bench --profile (${pmodels})"
    selab bench --backends webgpu --models "$pmodels" --phases train --steps 1 --warmup 1 --no-torch --profile ${BATCH:+--batch "$BATCH"} \
      > "$OUT/profile-webgpu.txt" 2>&1 || fail "webgpu profile (see profile-webgpu.txt)"
  fi
fi

# --- 4. one epoch of case 1 and of case 6 --------------------------------------------------------
if [ -n "$EPOCHS" ]; then
  DATA=${SELAB_DATA:-}
  if [ -z "$DATA" ]; then
    DATA=$WORK/cifar-10-batches-bin
    "$NODE" "$WORK/make-data.mjs" "$DATA" >> "$LOG" 2>&1 || fail "making the stand-in data"
  fi
  limits=()
  [ -n "$TRAIN_LIMIT" ] && limits+=(--train-limit "$TRAIN_LIMIT")
  [ -n "$TEST_LIMIT" ] && limits+=(--test-limit "$TEST_LIMIT")
  # shellcheck disable=SC2206 # word splitting intended
  [ -n "$TRAIN_ARGS" ] && limits+=($TRAIN_ARGS)
  for c in 1 6; do
    log "selab train --case $c --epochs 1 --backend webgpu --weights none ${limits[*]}"
    t0=$(date +%s)
    selab train --case "$c" --epochs 1 --backend webgpu --weights none --data "$DATA" --no-verify --out "$OUT/runs" "${limits[@]}" \
      > "$OUT/epoch-case$c.log" 2>&1 || fail "case $c epoch (see epoch-case$c.log)"
    log "case $c: $(( $(date +%s) - t0 )) s wall; $(tail -1 "$OUT/epoch-case$c.log")"
  done
fi

# --- 5. summary ------------------------------------------------------------------------------------
"$NODE" "$WORK/summary.mjs" "$OUT" 2>&1 | tee -a "$LOG" || fail "summary"
log "done in $(( $(date +%s) - START )) s, status $STATUS; results in $OUT"
exit "$STATUS"
