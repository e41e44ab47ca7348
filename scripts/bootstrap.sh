#!/usr/bin/env bash
# Everything tinyattn needs on a fresh Debian 12 machine: LLVM/MLIR 22, clang/lld 22 and QEMU from
# Debian's packages, then a virtualenv (.venv) with tinyattn installed editable. Idempotent: when
# everything is present it only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mlir-22-tools llvm-22 clang-22 lld-22 qemu-system-arm qemu-system-misc make cmake)
REQUIRED_TOOLS=(mlir-opt-22 mlir-translate-22 opt-22 llc-22 clang-22 ld.lld-22 llvm-nm-22
                llvm-ar-22 llvm-readobj-22 qemu-system-arm qemu-system-riscv32 make cmake)
export PATH="$PATH:/usr/lib/llvm-22/bin"

missing=()
for tool in "${REQUIRED_TOOLS[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
python_ok() { python3 -c 'import venv, ensurepip' >/dev/null 2>&1; }
python_ok || missing+=(python3-venv)

if ((${#missing[@]})); then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: missing ${missing[*]} and no apt-get on this machine; install by hand:" >&2
    echo "  LLVM/MLIR 22 (mlir-opt-22, mlir-translate-22, opt-22, llc-22, llvm-nm-22), clang-22," >&2
    echo "  ld.lld-22, QEMU >= 7.2 (qemu-system-arm, qemu-system-riscv32), Python >= 3.10 with venv" >&2
    exit 1
  fi
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  echo "bootstrap: installing ${APT_PACKAGES[*]} (missing: ${missing[*]})"
  "${sudo[@]}" apt-get update -qq
  packages=("${APT_PACKAGES[@]}")
  python_ok || packages+=(python3-venv)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.tinyattn-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing tinyattn into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi

# The C runtime of every emulated board and the QEMU instruction-counting plugin, built once from
# source into the cache (~/.cache/tinyattn, or $TINYATTN_CACHE); rebuilt only when a source changes.
.venv/bin/python -m tinyattn.backend.toolchain
