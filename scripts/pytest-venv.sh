#!/usr/bin/env bash
# A real pytest for the behaviour gate's tests: a virtualenv under target/ with pytest from
# PyPI, so the pytest runner path is tested against the real thing (tests/behaviour.rs finds
# it at target/pytest-venv/bin/python).
#
#   scripts/pytest-venv.sh install    # once; downloads pytest (~3 MB) into target/pytest-venv
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/target/pytest-venv"
PACKAGE="pytest==8.4.2"

case "${1:-}" in
    install)
        if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import pytest' 2>/dev/null; then
            echo "pytest-venv: already installed in $VENV"
            exit 0
        fi
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE"
        echo "pytest-venv: installed $PACKAGE in $VENV"
        ;;
    *)
        echo "usage: $0 install" >&2
        exit 2
        ;;
esac
