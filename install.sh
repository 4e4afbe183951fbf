#!/usr/bin/env bash
# Install kvmsandbox on Debian bookworm (as root): system packages, the Python
# dependencies, the native artefacts (cffi KVM module, ring0 blobs, systrap
# stub, ps mirror), and the `kvmsandbox` command on PATH.
#
#   ./install.sh              everything; afterwards `kvmsandbox` runs this checkout (a venv's
#                             command is linked into $KVMSB_BIN_DIR, default /usr/local/bin)
#   ./install.sh --deps-only  packages + Python deps + in-place native build only; never
#                             re-points an existing `kvmsandbox` install (test.sh, CI clones)
#
# Idempotent and quiet: each step checks first and does nothing when done, so a
# second run takes a second or two. Sourcing this file defines the functions
# without running anything (test.sh does that).

set -euo pipefail

KVMSB_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Debian packages and why: gcc/binutils/libc6-dev assemble ring0 and build the
# systrap stub and test programs (<linux/kvm.h> comes with libc6-dev);
# busybox-static is the static test program; libseccomp-dev builds the systrap
# filter; runsc is the benchmark peer; protobuf-compiler regenerates the gofer
# and trace messages; docker.io, containerd and runc are the real clients (and
# the runc peer) that tests/e2e drives; debootstrap builds the Debian root for tests.
KVMSB_APT_PACKAGES=(gcc binutils libc6-dev busybox-static libseccomp-dev runsc protobuf-compiler docker.io containerd runc debootstrap)
# Only when Debian's own python3 is used (it is "externally managed", so we use a venv).
KVMSB_APT_VENV_PACKAGES=(python3 python3-venv python3-dev)

kvmsb_log() { printf 'install: %s\n' "$*" >&2; }

kvmsb_missing_apt() {
	local pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || printf '%s\n' "$pkg"
	done
}

kvmsb_apt_install() {
	local missing
	mapfile -t missing < <(kvmsb_missing_apt "$@")
	((${#missing[@]})) || return 0
	if [[ $EUID -ne 0 ]]; then
		kvmsb_log "missing Debian packages (${missing[*]}); run as root or install them"
		return 1
	fi
	kvmsb_log "apt-get install ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# A python3 (>= 3.11) that pip may install into: $PYTHON if set, else the python3
# on PATH unless Debian marks it externally managed, else ./.venv (created here).
kvmsb_python() {
	if [[ -n "${PYTHON:-}" ]]; then
		printf '%s\n' "$PYTHON"
		return
	fi
	local py
	py="$(command -v python3 || true)"
	if [[ -n "$py" ]] && "$py" - <<-'EOF' 2>/dev/null; then
		import pathlib, sys, sysconfig
		managed = pathlib.Path(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED").exists()
		in_venv = sys.prefix != sys.base_prefix
		sys.exit(0 if sys.version_info >= (3, 11) and (in_venv or not managed) else 1)
	EOF
		"$py" -c 'import sys; print(sys.executable)'
		return
	fi
	if [[ ! -x "$KVMSB_REPO/.venv/bin/python" ]]; then
		kvmsb_apt_install "${KVMSB_APT_VENV_PACKAGES[@]}"
		kvmsb_log "creating $KVMSB_REPO/.venv"
		python3 -m venv "$KVMSB_REPO/.venv"
	fi
	printf '%s\n' "$KVMSB_REPO/.venv/bin/python"
}

# Requirements from pyproject.toml ([project] dependencies + the test extra) that
# are not installed yet, one per line.
kvmsb_missing_python_deps() {
	"$1" - "$KVMSB_REPO/pyproject.toml" <<-'EOF'
		import importlib.metadata, sys, tomllib
		from pip._vendor.packaging.requirements import Requirement
		pyproject = tomllib.load(open(sys.argv[1], "rb"))
		project = pyproject["project"]
		reqs = project["dependencies"] + project["optional-dependencies"]["test"]
		reqs += pyproject["build-system"]["requires"]  # for --no-build-isolation
		for req in dict.fromkeys(reqs):
		    try:
		        installed = importlib.metadata.version(Requirement(req).name)
		    except importlib.metadata.PackageNotFoundError:
		        installed = None
		    if installed is None or not Requirement(req).specifier.contains(installed, prereleases=True):
		        print(req)
	EOF
}

kvmsb_python_deps() {
	local py="$1" missing
	mapfile -t missing < <(kvmsb_missing_python_deps "$py")
	((${#missing[@]})) || return 0
	kvmsb_log "pip install ${missing[*]}"
	"$py" -m pip install -q --disable-pip-version-check "${missing[@]}"
}

# Native artefacts are rebuilt in place when a source is newer than the last
# build (the stamp, or the cffi module when there is no stamp yet).
KVMSB_STAMP="$KVMSB_REPO/build/native.stamp"

kvmsb_native_stale() {
	local so ref
	so="$(compgen -G "$KVMSB_REPO/kvmsandbox/kvm/_kvm*.so" | head -n1 || true)"
	[[ -n "$so" ]] || return 0
	ref="$KVMSB_STAMP"
	[[ -f "$ref" ]] || ref="$so"
	[[ -n "$(find "$KVMSB_REPO/setup.py" "$KVMSB_REPO/kvmsandbox" "$KVMSB_REPO/bootstrap/mirrors" -newer "$ref" \
		\( -name '*.S' -o -name '*.h' -o -name '*.c' -o -name '_build.py' -o -name 'build.py' \
		-o -name setup.py \) ! -name '_kvm.c' -print -quit)" ]]
}

kvmsb_native_build() {
	local py="$1" so
	kvmsb_native_stale || return 0
	kvmsb_log "building native artefacts in place"
	# The build overwrites the module in place; first move a copy over it, so
	# processes running from this checkout keep their own (now unlinked) inode.
	find "$KVMSB_REPO/kvmsandbox" -name '*.so' -print0 | while IFS= read -r -d '' so; do
		cp -p "$so" "$so.tmp.$$" && mv -f "$so.tmp.$$" "$so"
	done
	mkdir -p "$KVMSB_REPO/build"
	(cd "$KVMSB_REPO" && "$py" setup.py -q build_ext --inplace >"$KVMSB_REPO/build/native.log" 2>&1) || {
		cat "$KVMSB_REPO/build/native.log" >&2
		return 1
	}
	touch "$KVMSB_STAMP"
}

# Where the installed `kvmsandbox` package lives ("" when not installed).
kvmsb_installed_from() {
	# -I: not the checkout's own kvmsandbox.egg-info, which has no direct_url.json.
	"$1" -I - <<-'EOF' 2>/dev/null || true
		import importlib.metadata, json
		for dist in importlib.metadata.distributions(name="kvmsandbox"):
		    url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
		    print(url.removeprefix("file://"))
		    break
	EOF
}

kvmsb_install_package() {
	local py="$1" from
	from="$(kvmsb_installed_from "$py")"
	if [[ "$from" != "$KVMSB_REPO" ]]; then
		[[ -z "$from" ]] || kvmsb_log "re-pointing kvmsandbox from $from to $KVMSB_REPO"
		kvmsb_log "pip install -e $KVMSB_REPO"
		"$py" -m pip install -q --disable-pip-version-check --no-build-isolation -e "$KVMSB_REPO[test]"
	fi
	# A venv's scripts (or a fresh pyenv version's, before `pyenv rehash`) are not
	# on PATH; link the command where root's PATH looks.
	local bin link="${KVMSB_BIN_DIR:-/usr/local/bin}/kvmsandbox"
	bin="$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/kvmsandbox"
	if [[ "$py" == "$KVMSB_REPO/.venv/"* || -z "$(command -v kvmsandbox)" ]] &&
		[[ "$(readlink "$link" || true)" != "$bin" ]]; then
		kvmsb_log "linking $link -> $bin"
		ln -sf "$bin" "$link"
	fi
}

kvmsb_install_deps() {
	kvmsb_apt_install "${KVMSB_APT_PACKAGES[@]}"
	KVMSB_PYTHON="$(kvmsb_python)"
	kvmsb_python_deps "$KVMSB_PYTHON"
	kvmsb_native_build "$KVMSB_PYTHON"
}

kvmsb_main() {
	case "${1:-}" in
	"") kvmsb_install_deps && kvmsb_install_package "$KVMSB_PYTHON" ;;
	--deps-only) kvmsb_install_deps ;;
	*)
		echo "usage: $0 [--deps-only]" >&2
		return 2
		;;
	esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	kvmsb_main "$@"
fi
