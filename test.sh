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

if [[ "$KVMSB_REPO/" == /tmp/* ]]; then
	# Tests that run programs from the checkout inside a sandbox cannot see them there.
	echo "test.sh: warning: this checkout is under /tmp, which sandboxes replace with their own tmpfs" >&2
fi

status=0
echo "== ruff check"
"$KVMSB_PYTHON" -m ruff check --quiet . || status=1
echo "== ruff format --check"
"$KVMSB_PYTHON" -m ruff format --check --quiet . || status=1
echo "== pytest"
# Exit 5 means nothing was collected: a failure for the default suite (it must
# exist), but what an explicit selection such as `-m slow` may legitimately get.
rc=0
"$KVMSB_PYTHON" -m pytest -q -p no:cacheprovider "$@" || rc=$?
if ((rc == 5 && $# > 0)); then
	echo "test.sh: no tests matched: $*"
elif ((rc != 0)); then
	status=1
fi

exit "$status"
