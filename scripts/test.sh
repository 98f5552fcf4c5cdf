#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs intact's whole test suite, as root (`sudo` is not needed when you are
# root already). Installs the Debian packages the tests use (the real tools
# intact is checked against), then:
#
#  1. the suite, in a fresh clone: this checkout is cloned (`git clone`, plus
#     any uncommitted changes and new files) into a temporary directory with
#     nothing beside it, and `go vet ./...` and `go test ./...` run there. So
#     what CI proves is what a new user gets: a clone passes its own tests,
#     reading no data outside itself (testdata/ is in the repository).
#     Running the suite only there, not here as well, keeps CI's time what it
#     was: the clone costs a second and one compile of the tree, the tests
#     run once.
#     staticcheck, at the version pinned below (installed from the module
#     proxy into a temporary directory), runs there too, with and without
#     `-tags shareddata`: any finding fails the run.
#     The tests need no build tag: they import the TPM simulator (tpm/sim)
#     themselves. The binaries' files built only with `-tags intact_sim`
#     (the simulator for --tpm sim, the quickstart's build) are vetted with
#     that tag; release builds have no tag.
#  2. the extra run: tests over data that may not be copied into the
#     repository (the GPL-2.0 Raspberry Pi lists), built with
#     `-tags shareddata` and named TestShared…, here, over ../shared/testdata
#     beside this checkout (testdata/README.md). A few seconds. Under CI=true
#     a missing ../shared/testdata is a failure; elsewhere the run is skipped
#     with a note.
#
#   scripts/test.sh [go test flags]     e.g. scripts/test.sh -run TestVerify
#
# Needs root: the tests set security.* xattrs, mount loop devices and tmpfs,
# start swtpm and use fanotify on mounts they create themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
. scripts/common.sh
prog=test.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "$prog: error: run the tests as root (they set security.* xattrs, mount file systems, use fanotify)" >&2
	echo "$prog: hint: as root: ./scripts/test.sh (or: sudo ./scripts/test.sh)" >&2
	exit 2
fi
require_go "$prog" "$repo"

packages=(
	ima-evm-utils # evmctl: label interop
	attr          # getfattr/setfattr
	openssl
	e2fsprogs     # mkfs.ext4 for the off-line attack images
	util-linux    # mount, losetup, unshare
	keyutils      # keyctl: EVM keys in the kernel's encrypted key type
	swtpm swtpm-tools tpm2-tools
	groff-base               # groff: man page lint (internal/clidoc)
	systemd                  # systemd-analyze verify of the units (scripts TestInstall)
	zsh                      # the zsh completion (internal/clidoc TestZshCompletion)
	gcc libc6-dev libssl-dev # cgo: the embedded TPM simulator (go-tpm-tools) is C
	ca-certificates          # Go's module downloads
	git                      # the fresh clone below
	chromium fonts-dejavu-core # the dashboard's browser tests (attest/ui), headless
	postgresql                 # store/postgres: a real server per test binary (internal/pgtest), run as the postgres user
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
go version

# 1. The suite in a fresh clone.
# root may test a checkout another user owns: trust it for these commands only.
g() { git -c safe.directory='*' "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf --one-file-system "$tmp"' EXIT
clone=$tmp/intact
g clone --quiet "$repo" "$clone"
g -C "$clone" checkout --quiet --detach "$(g -C "$repo" rev-parse HEAD)"
if [ -n "$(g -C "$repo" status --porcelain)" ]; then
	# A developer's checkout: test what is on disk, not only what is committed.
	echo "$prog: testing HEAD plus the uncommitted changes and new files of $repo"
	g -C "$repo" diff --binary HEAD | g -C "$clone" apply --allow-empty --binary
	g -C "$repo" ls-files -z --others --exclude-standard | (cd "$repo" && tar --null -T - -cf -) | tar -C "$clone" -xf -
fi
[ ! -e "$tmp/shared" ] # nothing beside the clone
echo "== the suite, in a fresh clone: $clone"
staticcheck=honnef.co/go/tools/cmd/staticcheck@v0.8.2 # pinned: a new release brings new checks
GOBIN=$tmp/bin go install "$staticcheck"
(cd "$clone" && go vet ./... && go vet -tags intact_sim ./cmd/... &&
	echo "== staticcheck ($staticcheck)" &&
	"$tmp/bin/staticcheck" ./... && "$tmp/bin/staticcheck" -tags shareddata ./... &&
	go test -count=1 -timeout 18m "$@" ./...)

# 2. The extra run over ../shared/testdata.
# The packages with files built only with the shareddata tag.
mapfile -t extra < <(grep -rl --include='*_test.go' '^//go:build shareddata$' . | xargs -n1 dirname | sort -u)
[ ${#extra[@]} -gt 0 ] || { echo "$prog: error: no shareddata test files found" >&2; exit 1; }
if [ -d ../shared/testdata ]; then
	echo "== the extra run over ../shared/testdata: ${extra[*]}"
	go vet -tags shareddata "${extra[@]}"
	go test -count=1 -timeout 5m -tags shareddata -run '^TestShared' "${extra[@]}"
elif [ -n "${CI:-}" ]; then
	echo "$prog: error: ../shared/testdata is missing; CI must run the tests over it (testdata/README.md)" >&2
	exit 1
else
	echo "$prog: note: no ../shared/testdata beside $repo: the extra run (go test -tags shareddata) is skipped"
fi
