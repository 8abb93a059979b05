#!/usr/bin/env bash
# llama.cpp's libraries with slmbench's patches (patches/llama.cpp/*.patch, in name order): two
# always on (a fix and a speed-up that changes no result), two LoRA patches for issue 24's
# routed-decode and adapter-switch targets and two for its evaluation-speed target (one for AMX
# hosts), each opt-in per process (the last with two switches; the attention one's other half,
# which changes no result, always on):
#   amx-tilecfg.patch               (a fix, always on)          AMX's tile config reaches the CPU
#                                                              whole under GCC 12, whose build of
#                                                              stock llama.cpp dies at the first
#                                                              AMX matmul (llama.cpp#20824)
#   flash-attn-short-prompts.patch  (always on)                flash attention's tiled kernel
#                                                              computes a query tile's own rows,
#                                                              not its padding to 64, bit for bit
#                                                              the same result
#                                   LLAMA_FA_TILED_SHORT=1     a batch of 2 to 63 tokens (what the
#                                                              prompt cache leaves of a prompt)
#                                                              takes that tiled kernel, Q in fp32,
#                                                              instead of the one-row kernel, Q
#                                                              rounded to f16
#   flash-attn-vectors.patch        (always on)                flash attention's tiled prompt
#                                                              kernel takes its row maxima
#                                                              (AVX-512) and mask rows with vector
#                                                              code, bit for bit the same result
#   lora-fused.patch                LLAMA_LORA_FUSED=1         a LoRA update without stock's four
#                                                              graph nodes: at decode an epilogue
#                                                              of the base matmul (ggml-cpu), in
#                                                              prompts (AVX2, AVX-512) one fused node
#   lora-switch-keep-reserve.patch  LLAMA_LORA_KEEP_RESERVE=1  a switch between adapters of one
#                                                              layout keeps the compute reservation
#   weights-on-amx.patch            LLAMA_AMX_Q5_0=1           Q5_0 weights (q4_k_m's fallback for
#                                                              rows not a multiple of 256) held as
#                                                              Q8_0, exactly, in AMX's buffer, so
#                                                              they run on its int8 tiles (34 bytes
#                                                              per 32 values instead of 22)
#                                   LLAMA_AMX_F16=1            a prompt's f16 matmuls on AMX's bf16
#                                                              tiles, weight and activation each
#                                                              split into two bf16
#
# Builds from the llama-cpp-python sdist pinned in constraints.txt (its vendored llama.cpp, so
# the libraries match the installed bindings), into the slmbench cache, once per version and
# patch; prints the folder. Point the bindings at it and opt in per process:
#
#     LLAMA_CPP_LIB_PATH=$(bash scripts/build_llama_cpp_lora_patches.sh) LLAMA_LORA_FUSED=1 ...
#
# About 5 minutes on 2 cores, once per version and patch set. The folder appears whole or not at
# all, so an interrupted build starts over. Needs cmake, a C++17 compiler and PyPI (pip download) or pip's cache.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
PATCHES=("$ROOT"/patches/llama.cpp/*.patch)
VERSION=$(sed -n 's/^llama[-_]cpp[-_]python==//p' "$ROOT/constraints.txt")
if [ -z "$VERSION" ]; then
  echo "error: $ROOT/constraints.txt pins no llama_cpp_python" >&2
  exit 1
fi
CACHE=${SLMBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/slmbench}
DEST=$CACHE/llama_cpp_fused/$VERSION-$(cat "${PATCHES[@]}" | sha256sum | cut -c1-12)
if [ -f "$DEST/libllama.so" ]; then
  echo "$DEST"
  exit 0
fi
mkdir -p "$CACHE/llama_cpp_fused"
WORK=$(mktemp -d "$CACHE/llama_cpp_fused/.build-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "llama_cpp_python==$VERSION" -d "$WORK" >&2
tar xzf "$WORK/llama_cpp_python-$VERSION.tar.gz" -C "$WORK"
SRC=$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp
for PATCH in "${PATCHES[@]}"; do
  if ! patch -d "$SRC" -p1 --forward --quiet < "$PATCH" >&2; then
    echo "error: $PATCH does not apply to llama-cpp-python $VERSION's llama.cpp" >&2
    exit 1
  fi
done
# $ORIGIN: the libraries find each other wherever the folder is moved to
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_BUILD_RPATH_USE_ORIGIN=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_CURL=OFF >&2
cmake --build "$WORK/build" --target llama -j"$(nproc)" >&2
mkdir "$WORK/lib"
cp -P "$WORK"/build/bin/lib*.so* "$WORK/lib/"
rm -rf "$DEST"
mv "$WORK/lib" "$DEST"
echo "$DEST"
