#!/bin/sh
# Write constraints.txt: every distribution a board install runs, pinned, as pip
# resolves `pip install .` into a fresh venv (the way scripts/install.sh builds
# one: no pip inside, setuptools only because colorzero asks for it).
#
#   scripts/lock.sh            after changing a dependency in pyproject.toml
#
# Environment: PYTHON, the Python 3.11 with pip that resolves (default python3).
# The result is for Linux and Python 3.11 on any architecture: no dependency of
# the tree is conditional on the machine. tests/unit/test_packaging.py checks it
# against pyproject.toml and the installed tree.
set -eu
PYTHON=${PYTHON:-python3}
SRC=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m venv --without-pip "$work/venv"
tar -C "$SRC" -cf - pyproject.toml README.md firmware hal config | tar -C "$work" -xf -
"$PYTHON" -m pip --python "$work/venv/bin/python" install --quiet --disable-pip-version-check \
    --no-cache-dir "$work"
{
    echo "# The whole dependency tree of a board install, pinned. Written by scripts/lock.sh"
    echo "# from pyproject.toml; used by scripts/install.sh, Dockerfile.armv7 and make install."
    "$PYTHON" -m pip --python "$work/venv/bin/python" freeze --all --disable-pip-version-check \
        --exclude chargepoint-firmware --exclude pip | LC_ALL=C sort -f -t= -k1,1
} >"$SRC/constraints.txt.new"
mv "$SRC/constraints.txt.new" "$SRC/constraints.txt"
echo "lock.sh: wrote $SRC/constraints.txt"
