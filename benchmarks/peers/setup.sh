#!/usr/bin/env bash
# Install the peer link checkers the check benchmark compares against (idempotent).
#   linkinator  (npm, pinned in package.json + package-lock.json) -> benchmarks/peers/node_modules
#   LinkChecker (PyPI, pinned below, in its own virtualenv)       -> benchmarks/.venvs/linkchecker
# Needs node >= 20 with npm, and python3.11. Re-running it only fixes what is missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$(dirname "$here")"
LINKCHECKER_VERSION="10.6.0"
PYTHON="${PYTHON:-python3.11}"

if [ ! -x "$here/node_modules/.bin/linkinator" ]; then
  echo "setup: installing linkinator from package-lock.json"
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error
fi
echo "setup: linkinator $(node -p "require('$here/node_modules/linkinator/package.json').version")"

venv="$bench/.venvs/linkchecker"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$PYTHON" -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('linkchecker') != '$LINKCHECKER_VERSION')" 2>/dev/null; then
  echo "setup: installing linkchecker==$LINKCHECKER_VERSION"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "linkchecker==$LINKCHECKER_VERSION"
fi
echo "setup: LinkChecker $("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('linkchecker'))")"
