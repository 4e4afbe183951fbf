#!/usr/bin/env bash
# Install whatever is missing, then run the checks CI runs: lint, format, tests.
#
#   ./test.sh                 ruff check, ruff format --check, pytest (default suite: not slow)
#   ./test.sh -m slow         extra arguments go to pytest
#
# Tests run against this checkout (not whatever `kvmsandbox` is installed), so a
# CI clone tests itself: the repository root is first on PYTHONPATH and a
# `kvmsandbox` wrapper for this checkout is first on PATH.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# shellcheck source=install.sh
source ./install.sh
kvmsb_install_deps

export PYTHONPATH="$KVMSB_REPO${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p build/bin
printf '#!/bin/sh\nexec "%s" -m cli.main "$@"\n' "$KVMSB_PYTHON" >build/bin/kvmsandbox
chmod +x build/bin/kvmsandbox
export PATH="$KVMSB_REPO/build/bin:$PATH"

status=0
echo "== ruff check"
"$KVMSB_PYTHON" -m ruff check --quiet . || status=1
echo "== ruff format --check"
"$KVMSB_PYTHON" -m ruff format --check --quiet . || status=1
echo "== pytest"
# Exit 5 (nothing collected) is a failure too: the suite must exist.
"$KVMSB_PYTHON" -m pytest -q -p no:cacheprovider "$@" || status=1

exit "$status"
