#!/usr/bin/env bash
# Builds what bench/gpu/run.sh needs on a GPU machine that has no Node.js and no network, in one
# folder (default .cache/gpu-bundle, which git ignores; name it in the device tool's `carry`):
#   node.xz                       this machine's Node 20 binary, xz-compressed
#   selab.mjs.xz                  selab's bench/train/run commands and tfjs-backend-webgpu, one file
#                                 (esbuild, from bench/gpu/entry.mjs)
#   node_modules/webgpu/          Dawn for Node: index.js, package.json, dist/linux-x64/dawn.node.xz
#   libvulkan1_*.deb              the Vulkan loader (Debian 12), unpacked there if the system has none
#   libstdc++/libstdc++.so.6.xz   this machine's C++ runtime, used only where the system's is too
#                                 old for dawn.node (it needs GLIBCXX_3.4.30, GCC 12)
#   run.sh, torch_peer.py, make-data.mjs, summary.mjs, package.json
# and checks that it stays under 64 MiB. Needs npm's packages installed (npm ci), xz, and apt
# (for `apt-get download`).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=${1:-.cache/gpu-bundle}
LIMIT=$((64 * 1024 * 1024))

node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" = 20 ] || { echo "prepare.sh: needs Node 20 here (found $(node --version)), the version the bundle is built and tested with" >&2; exit 1; }
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || { echo "prepare.sh: node_modules/webgpu is missing: npm ci (optional dependencies included)" >&2; exit 1; }

rm -rf "$DEST"
mkdir -p "$DEST/node_modules/webgpu/dist/linux-x64" "$DEST/libstdc++"

echo "bundling selab (esbuild)"
npx esbuild bench/gpu/entry.mjs --bundle --platform=node --format=esm --target=node20 \
  --outfile="$DEST/selab.mjs" --external:webgpu --alias:@resvg/resvg-js=./bench/gpu/no-resvg.mjs \
  --ignore-annotations --minify --keep-names --log-level=warning \
  "--banner:js=import { createRequire as __selabRequire } from 'node:module'; const require = __selabRequire(import.meta.url);"
xz -T0 -6 "$DEST/selab.mjs"

echo "compressing $(command -v node) ($(node --version))"
xz -T0 -6 -c "$(command -v node)" > "$DEST/node.xz"

echo "copying Dawn (webgpu $(node -p 'require("./node_modules/webgpu/package.json").version'))"
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$DEST/node_modules/webgpu/"
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$DEST/node_modules/webgpu/dist/linux-x64/dawn.node.xz"

echo "downloading the Vulkan loader (libvulkan1)"
(cd "$DEST" && apt-get download -o APT::Sandbox::User=root libvulkan1 >/dev/null)

libstdcxx=$(ldconfig -p | awk '/libstdc\+\+\.so\.6 .*x86-64/ { print $NF; exit }')
xz -T0 -6 -c "$(readlink -f "$libstdcxx")" > "$DEST/libstdc++/libstdc++.so.6.xz"

cp bench/gpu/run.sh bench/torch_peer.py bench/gpu/make-data.mjs bench/gpu/summary.mjs "$DEST/"
node -e 'const p = require("./package.json"); console.log(JSON.stringify({ name: p.name, version: p.version, type: "module", private: true }))' > "$DEST/package.json"
git rev-parse HEAD > "$DEST/COMMIT" 2>/dev/null || true

size=$(du -sb "$DEST" | cut -f1)
echo "bundle: $DEST, $((size / 1024 / 1024)) MiB ($size bytes)"
find "$DEST" -type f -printf '%10s  %P\n' | sort -rn
[ "$size" -le "$LIMIT" ] || { echo "prepare.sh: the bundle is over 64 MiB" >&2; exit 1; }
