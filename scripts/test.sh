#!/usr/bin/env bash
# Runs intact's whole test suite. Installs the Debian packages the tests use
# (the real tools intact is checked against), then runs every Go test.
# Needs root: the tests set security.* xattrs, mount loop devices and tmpfs,
# start swtpm and use fanotify on mounts they create themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
	ima-evm-utils # evmctl: label interop
	attr          # getfattr/setfattr
	openssl
	e2fsprogs     # mkfs.ext4 for the off-line attack images
	util-linux    # mount, losetup, unshare
	keyutils      # keyctl: EVM keys in the kernel's encrypted key type
	swtpm swtpm-tools tpm2-tools
	groff-base               # groff: man page lint (internal/clidoc)
	gcc libc6-dev libssl-dev # cgo: the embedded TPM simulator (go-tpm-tools) is C
	ca-certificates          # Go's module downloads
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin # sudo's secure_path lacks it
go version
go vet ./...
go test -count=1 -timeout 18m "$@" ./...
