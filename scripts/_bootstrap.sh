# Sourced by scripts/serve and scripts/test: make .venv and install wheelcave into it.
# Re-installs only when pyproject.toml changed (a stamp keeps its hash).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WHEELCAVE_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${1:-}"

if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "wheelcave needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV" >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade "pip>=25"
fi
# One stamp per pyproject.toml and extras; the test extras include everything serve needs, so
# scripts/serve after scripts/test (or the other way round) installs nothing again.
HASH="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
STAMP="$VENV/.wheelcave-install-$HASH-${EXTRAS:-base}"
if [ ! -e "$STAMP" ] && ! { [ -z "$EXTRAS" ] && [ -e "$VENV/.wheelcave-install-$HASH-test" ]; }; then
    echo "bootstrap: installing wheelcave${EXTRAS:+[$EXTRAS]} into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade "pip>=25"
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT${EXTRAS:+[$EXTRAS]}"
    find "$VENV" -maxdepth 1 -name '.wheelcave-install-*' ! -name ".wheelcave-install-$HASH-*" -delete
    touch "$STAMP"
fi
