#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# intact's main job on embedded defaults: label a tree with signatures,
# verify it, tamper with it the way an off-line attacker would, and show
# intact naming what changed.
#
#   scripts/demo.sh [DIR]     (as root; DIR defaults to /var/tmp/intact-demo)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/var/tmp/intact-demo}
. scripts/common.sh
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

if ! command -v setfattr >/dev/null; then
	# the attacker's tools: getfattr/setfattr
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq attr >/dev/null
fi
require_go demo "$PWD"
mkdir -p bin
go build -o bin/intact ./cmd/intact
intact=$PWD/bin/intact

if [ -e "$dir" ]; then
	echo "demo: $dir exists; remove it or name another directory" >&2
	exit 2
fi
mkdir -p "$dir/keys"
say "a tree to protect: a copy of /usr/bin in $dir/tree"
cp -a /usr/bin "$dir/tree"
find "$dir/tree" ! -type f ! -type d -delete
echo "$(find "$dir/tree" -type f | wc -l) files"

say "a signing key and its certificate"
"$intact" keygen --type ec-p256 --key "$dir/keys/signing.pem" --cert "$dir/keys/signing.der"

say "sign every file (security.ima, the kernel's format)"
time "$intact" sign --key "$dir/keys/signing.pem" -r "$dir/tree"

say "verify the tree"
time "$intact" verify --cert "$dir/keys/signing.der" -r "$dir/tree"

say "the attacker, machine off: patch a binary, swap a label, strip another"
victim=$(find "$dir/tree" -type f -size +10k | sort | sed -n 1p)
other=$(find "$dir/tree" -type f -size +10k | sort | sed -n 2p)
stripped=$(find "$dir/tree" -type f -size +10k | sort | sed -n 3p)
printf '\x90' | dd of="$victim" bs=1 seek=4096 conv=notrunc status=none
getfattr --absolute-names --only-values -n security.ima "$victim" > "$dir/label"
setfattr -n security.ima -v "0x$(od -An -v -tx1 "$dir/label" | tr -d ' \n')" "$other"
setfattr -x security.ima "$stripped"
echo "patched $victim; copied its label onto $other; removed the label of $stripped"

say "verify again: intact names each changed file (exit status 1)"
set +e
"$intact" verify --cert "$dir/keys/signing.der" -r "$dir/tree"
rc=$?
set -e
echo "exit status $rc"
say "done: keys in $dir/keys, the tree in $dir/tree; remove $dir when finished"
[ "$rc" -eq 1 ]
