#!/usr/bin/env bash
# Builds intact's Debian package from this repository with nfpm
# (github.com/goreleaser/nfpm, run with "go run" at a pinned version, so
# it stays out of go.mod): the files scripts/install.sh installs, no
# maintainer scripts, nothing enabled or started.
#
#   scripts/package.sh [--stage DIR] [OUTDIR]
#
# writes OUTDIR/intact_VERSION_ARCH.deb (default OUTDIR: .). --stage packs
# DIR, a tree "scripts/install.sh --destdir DIR" made, instead of building.
#
# VERSION is 0.1.0~gitDATE.REV (the last commit's date and revision).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
prog=package
# shellcheck source=common.sh
. "$repo/scripts/common.sh"
nfpm=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0

from=""
if [ "${1:-}" = --stage ]; then
	from=$(cd "${2:?--stage needs a DIR}" && pwd)
	shift 2
fi
out=${1:-.}
mkdir -p "$out"
out=$(cd "$out" && pwd)
require_go "$prog" "$repo"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
if [ -n "$from" ]; then
	cp -a "$from" "$stage/root"
else
	"$repo/scripts/install.sh" --destdir "$stage/root" >&2
fi
rm -f "$stage/root/usr/share/intact/installed-files"

rev=$(git -C "$repo" rev-parse --short=12 HEAD)
date=$(git -C "$repo" log -1 --format=%cd --date=format:%Y%m%d)
version=0.1.0~git$date.$rev
arch=$(go env GOARCH)

# The package's depends: the shared libraries the binaries link (cgo).
depends=(libc6)
if ldd "$stage/root/usr/sbin/intactd" "$stage/root/usr/bin/intact-verifier" 2>/dev/null | grep -q 'libcrypto\.so\.3'; then
	depends+=(libssl3)
fi

{
	cat <<-YAML
		name: intact
		arch: $arch
		platform: linux
		version: $version
		version_schema: none
		section: admin
		priority: optional
		maintainer: intact maintainers <maintainers@intactsec.invalid>
		homepage: https://github.com/intactsec/intact
		license: Apache-2.0
		description: |-
		  userspace Linux file integrity: IMA/EVM labels, enforcement, attestation
		  intact labels files with IMA/EVM-compatible signatures and digests and
		  verifies them (intact), enforces integrity on exec and open with fanotify
		  under an IMA policy, measuring into a TPM (intactd), and attests fleets
		  of machines remotely (intact-verifier).
		depends:
	YAML
	for d in "${depends[@]}"; do
		echo "  - $d"
	done
	echo "contents:"
	(cd "$stage/root" && find . -type f | LC_ALL=C sort) | while read -r f; do
		p=${f#.}
		mode=0644
		[ -x "$stage/root$p" ] && mode=0755
		printf '  - src: %s\n    dst: %s\n    file_info:\n      mode: %s\n' "$stage/root$p" "$p" "$mode"
	done
} >"$stage/nfpm.yaml"

deb=$out/intact_${version}_$arch.deb
rm -f "$deb"
echo "${bold}== nfpm: $deb${plain}" >&2
(cd "$stage" && go run "$nfpm" package --config nfpm.yaml --packager deb --target "$deb" >&2)
echo "$deb"
