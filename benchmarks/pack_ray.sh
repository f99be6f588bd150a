#!/usr/bin/env bash
# Pack Ray for a GPU machine that has no network and takes at most 64 MiB of files along:
# Ray's wheel (about 79 MB) without its Java jars (ray/jars, about 32 MB, unused from Python),
# plus jsonschema and its own needs, which that image lacks. Writes DIR (default .raydev/):
#   DIR/ray.tar.gz  the trimmed package (tar keeps the raylet's executable bit)
#   DIR/*.whl     jsonschema, jsonschema-specifications, referencing, rpds-py
# On the GPU machine:
#   mkdir -p /tmp/site && tar -xzf DIR/ray.tar.gz -C /tmp/site &&
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site DIR/*.whl &&
#   export PYTHONPATH=/tmp/site:$PYTHONPATH
set -euo pipefail
DIR=${1:-.raydev}
PYVER=${PYVER:-3.12}
RAY=${RAY:-2.60.0}
mkdir -p "$DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
download() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    --platform any -d "$1" "$2"
}
download "$tmp" "ray==$RAY"
download "$DIR" jsonschema
download "$DIR" jsonschema-specifications
download "$DIR" referencing
download "$DIR" rpds-py
python3 - "$tmp"/ray-*.whl "$DIR/ray.tar.gz" <<'EOF'
import io, sys, tarfile, zipfile
with zipfile.ZipFile(sys.argv[1]) as src, tarfile.open(sys.argv[2], "w:gz") as out:
    for item in src.infolist():
        if item.filename.startswith("ray/jars/") or item.is_dir():
            continue
        data = src.read(item.filename)
        info = tarfile.TarInfo(item.filename)
        info.size, info.mode = len(data), (item.external_attr >> 16) & 0o777 or 0o644
        out.addfile(info, io.BytesIO(data))
EOF
du -sh "$DIR"
