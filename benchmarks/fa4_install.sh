#!/usr/bin/env bash
# Install flash-attn-4 (FlexAttention's FLASH backend) on the GPU machine, which has no network,
# from the wheels benchmarks/pack_fa4.sh laid out in .whl-fa4a/ and .whl-fa4b/ (about 53 MiB each;
# a call carries at most 64 MiB). Run from the repo root, once per call, in two consecutive calls
# to the same warm machine (/tmp survives between them):
#   call 1: carry [".whl-deb", ".whl-fa4a"]   bash benchmarks/fa4_install.sh; ...   (exits 3: parts missing)
#   call 2: carry [".whl-fa4b"]               bash benchmarks/fa4_install.sh && ...
# Each run copies the parts it finds into /tmp/fa4-parts/; once fa4-manifest.txt's wheels are all
# there (split ones put back together), it checks their sha256 and installs them with
# `pip install --no-index --no-deps --target /tmp/fa4`. Then it prints the PYTHONPATH line
# (the nvidia-cutlass-dsl .pth file is not processed under --target, so dsl_packages goes on it
# by hand) and whether `import flash_attn.cute` works. Idempotent: an install of the same manifest
# is kept. cuda-bindings, cuda-pathfinder and einops are skipped when the image already has them
# (it does, per KINDS.md), so that /tmp/fa4 on PYTHONPATH does not shadow its own copies;
# FA4_ALL=1 installs them too.
# Exit status: 0 installed, 3 parts still missing, 1 a bad part or a failed install.
set -u
PY=${FA4_PYTHON:-python3}
PARTS=/tmp/fa4-parts
TARGET=${FA4_TARGET:-/tmp/fa4}
DSL=$TARGET/nvidia_cutlass_dsl/dsl_packages
mkdir -p "$PARTS/whl"

# (1) whatever parts this call carried
absent=()
for d in .whl-fa4a .whl-fa4b; do
  if [ -d "$d" ]; then cp -f "$d"/* "$PARTS/" && echo "fa4: copied $d ($(ls "$d" | wc -l) files) to $PARTS"
  else absent+=("$d"); fi
done
MAN=$PARTS/fa4-manifest.txt
if [ ! -f "$MAN" ]; then
  echo "fa4: MISSING fa4-manifest.txt: carry .whl-fa4a (or .whl-fa4b)" && exit 3
fi

# (2) every wheel present (each split one from its parts .part-aa, .part-ab, ...)?
missing=() wheels=()
while read -r sha name n; do
  [ -z "${sha:-}" ] || [ "${sha:0:1}" = "#" ] && continue
  if [ "$n" = 1 ]; then
    [ -f "$PARTS/$name" ] || missing+=("$name")
  else
    for i in $(seq 0 $((n - 1))); do
      part=$name.part-a$(printf "\\x$(printf %x $((97 + i)))")
      [ -f "$PARTS/$part" ] || missing+=("$part")
    done
  fi
  wheels+=("$name")
done < "$MAN"
if [ ${#missing[@]} -gt 0 ]; then
  echo "fa4: still MISSING ${#missing[@]} of the parts; carry ${absent[*]:-.whl-fa4a and .whl-fa4b}" \
    "in the next call to this warm machine. Missing: ${missing[*]}"
  exit 3
fi
echo "fa4: all ${#wheels[@]} wheels present"

stamp=$(sha256sum < "$MAN" | cut -d' ' -f1)
if [ -f "$TARGET/.fa4-stamp" ] && [ "$(cat "$TARGET/.fa4-stamp")" = "$stamp" ]; then
  echo "fa4: already installed in $TARGET (same manifest)"
else
  # reassemble and check every wheel against the manifest
  to_install=()
  while read -r sha name n; do
    [ -z "${sha:-}" ] || [ "${sha:0:1}" = "#" ] && continue
    if [ "$n" = 1 ]; then cp -f "$PARTS/$name" "$PARTS/whl/$name"; else cat "$PARTS/$name".part-a? > "$PARTS/whl/$name"; fi
    got=$(sha256sum < "$PARTS/whl/$name" | cut -d' ' -f1)
    if [ "$got" != "$sha" ]; then
      echo "fa4: BAD sha256 for $name: $got, manifest says $sha (remove $PARTS and carry both folders again)"
      rm -f "$PARTS/whl/$name" && exit 1
    fi
    dist=$(echo "${name%%-*}" | tr _ -)
    case $dist in
    cuda-bindings | cuda-pathfinder | einops)
      have=$(env -u PYTHONPATH "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$dist" 2>/dev/null)
      if [ -n "$have" ] && [ "${FA4_ALL:-0}" != 1 ]; then
        echo "fa4: sha256 ok, SKIP $name: the image has $dist $have"
        continue
      fi ;;
    esac
    echo "fa4: sha256 ok $name"
    to_install+=("$PARTS/whl/$name")
  done < "$MAN"
  rm -rf "$TARGET.new"
  # shellcheck disable=SC2086  # FA4_PIP_EXTRA: e.g. --platform/--python-version for a test elsewhere
  if ! "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check --root-user-action=ignore \
      ${FA4_PIP_EXTRA:-} --target "$TARGET.new" "${to_install[@]}"; then
    echo "fa4: pip install FAILED" && rm -rf "$TARGET.new" && exit 1
  fi
  echo "$stamp" > "$TARGET.new/.fa4-stamp"
  rm -rf "$TARGET" && mv "$TARGET.new" "$TARGET"
  echo "fa4: installed ${#to_install[@]} wheels into $TARGET ($(du -sh "$TARGET" | cut -f1))"
fi

# (3) how to use it, and whether it imports
echo "export PYTHONPATH=$TARGET:$DSL:\$PYTHONPATH"
res=$(PYTHONPATH="$TARGET:$DSL:${PYTHONPATH:-}" timeout 300 "$PY" -c "
import flash_attn.cute, cutlass, importlib.metadata as m
print('ok: flash-attn-4', m.version('flash-attn-4'), 'nvidia-cutlass-dsl', m.version('nvidia-cutlass-dsl'), 'from', flash_attn.cute.__file__)
" 2>&1 | grep -v -i warning | tail -1)
echo "fa4: import flash_attn.cute: ${res:-no output}"
exit 0
