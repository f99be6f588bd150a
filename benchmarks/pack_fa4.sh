#!/usr/bin/env bash
# Pack flash-attn-4 (FlexAttention's FLASH backend, CuTe DSL) for a GPU machine with no network that
# takes at most 64 MiB of files per call. Run here, from the repo root; writes two git-ignored folders,
# .whl-fa4a/ and .whl-fa4b/ (each under 60 MiB), to carry in two consecutive calls to the same warm
# machine, where benchmarks/fa4_install.sh puts them together and installs them into /tmp/fa4.
# nvidia-cutlass-dsl-libs-cu13 (about 88 MiB) is cut in two with `split`, one part per folder.
# fa4-manifest.txt (in both folders) lists each wheel's sha256, name and number of parts.
# Versions: those ANCHORS.md measured (flash-attn-4 4.0.0b36, nvidia-cutlass-dsl 4.8.1); the
# rest are whatever pip picks now (PYVER=3.12: the device's python3 is 3.12.3, KINDS.md).
# torch, triton, protobuf, typing-extensions, numpy are already there and are not packed.
set -euo pipefail
PYVER=${PYVER:-3.12}
A=.whl-fa4a B=.whl-fa4b
PKGS="flash-attn-4==4.0.0b36 nvidia-cutlass-dsl==4.8.1 nvidia-cutlass-dsl-libs-base==4.8.1
  nvidia-cutlass-dsl-libs-core==4.8.1 nvidia-cutlass-dsl-libs-cu13==4.8.1 cuda-bindings cuda-pathfinder
  apache-tvm-ffi<0.2,>=0.1.11 torch-c-dlpack-ext quack-kernels einops"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for p in $PKGS; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d "$tmp" "$p" 2>&1 \
    | grep -v "Location 'file" || true
done
rm -rf "$A" "$B" && mkdir -p "$A" "$B"
: > "$tmp/fa4-manifest.txt"
for w in "$tmp"/*.whl; do
  name=$(basename "$w")
  case $name in
  nvidia_cutlass_dsl_libs_cu13-*)  # the big one: first 45 MiB to A, the rest to B
    split -b 45M -a 2 "$w" "$tmp/$name.part-"
    mv "$tmp/$name.part-aa" "$A/" && mv "$tmp/$name.part-ab" "$B/"
    echo "$(sha256sum < "$w" | cut -d' ' -f1) $name 2" >> "$tmp/fa4-manifest.txt" ;;
  cuda_bindings-*)  # 8 MiB: balances the two folders
    echo "$(sha256sum < "$w" | cut -d' ' -f1) $name 1" >> "$tmp/fa4-manifest.txt" && cp "$w" "$A/" ;;
  *)
    echo "$(sha256sum < "$w" | cut -d' ' -f1) $name 1" >> "$tmp/fa4-manifest.txt" && cp "$w" "$B/" ;;
  esac
done
cp "$tmp/fa4-manifest.txt" "$A/" && cp "$tmp/fa4-manifest.txt" "$B/"
cat "$A/fa4-manifest.txt"
du -sh --apparent-size "$A" "$B"
