#!/usr/bin/env bash
# Build mmcv 2.1.0 with its CPU ops (mmdet 3.3 imports mmcv._ext) as a wheel in $1, once.
# PyPI ships mmcv only as source; its setup.py asks for C++17, which torch 2.14's ATen rejects.
set -euo pipefail
out=$(realpath -m "${1:-$HOME/.cache/bench/wheels}")
py=$(realpath -s "${2:-.venv/bin/python}")  # -s: a venv is its symlink
ls "$out"/mmcv-2.1.0-cp*.whl >/dev/null 2>&1 && exit 0
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" -m pip install -q 'setuptools<81' wheel ninja
"$py" -m pip download -q --no-deps --no-build-isolation --no-binary :all: -d "$work" mmcv==2.1.0
tar -xzf "$work"/mmcv-2.1.0.tar.gz -C "$work"
sed -i "s/'-std=c++17'/'-std=c++20'/" "$work"/mmcv-2.1.0/setup.py
cd "$work"/mmcv-2.1.0
MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=2 "$py" -m pip wheel -q --no-build-isolation --no-deps -w "$out" .
