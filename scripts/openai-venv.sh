#!/usr/bin/env bash
# The official OpenAI Python client, for checking that `ouroboros serve` works with it: a
# virtualenv under target/ with `openai` from PyPI (tests/openai_client.rs finds it at
# target/openai-venv/bin/python and runs tests/clients/openai_compat.py).
#
#   scripts/openai-venv.sh install    # once; downloads openai and its dependencies (~70 MB)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/target/openai-venv"
PACKAGE="openai==3.57.0"

case "${1:-}" in
    install)
        if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import openai' 2>/dev/null; then
            echo "openai-venv: already installed in $VENV"
            exit 0
        fi
        python3 -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PACKAGE"
        echo "openai-venv: installed $PACKAGE in $VENV"
        ;;
    *)
        echo "usage: $0 install" >&2
        exit 2
        ;;
esac
