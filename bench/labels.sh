#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Labelling and verification throughput: intact beside evmctl and
# sha256sum, on the same copy of a real tree, in the same run.
#
#   bench/labels.sh [RUNS] [SRC...]     (root; defaults: 5 runs; /usr/bin
#                                        /usr/sbin /usr/libexec
#                                        /usr/lib/x86_64-linux-gnu)
#
# With INTACT_BASELINE=/path/to/an/older/intact it also times that binary's
# sign -r and verify -r on the same tree, interleaved run by run with this
# checkout's, and prints the ratio (to see what a change costs).
#
# Prints the median wall time of each step, files/s, MB/s, and intact's
# speed as a multiple of each anchor's. Caches are warm (the tree is read
# once before timing). Results go in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
shift || true
srcs=("$@")
[ ${#srcs[@]} -gt 0 ] || srcs=(/usr/bin /usr/sbin /usr/libexec /usr/lib/x86_64-linux-gnu)
for tool in evmctl openssl sha256sum; do
	command -v $tool >/dev/null || { echo "bench: $tool missing (run scripts/test.sh once to install it)" >&2; exit 2; }
done

work=$(mktemp -d /var/tmp/intact-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/intact" ./cmd/intact
tree="$work/tree"
mkdir -p "$tree"
for s in "${srcs[@]}"; do
	cp -a "$s" "$tree/" 2>/dev/null || true
done
# regular files only, no symlinks: the same set for every tool
find "$tree" ! -type f ! -type d -delete
nfiles=$(find "$tree" -type f | wc -l)
bytes=$(find "$tree" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
mb=$(awk -v b="$bytes" 'BEGIN {printf "%.1f", b/1e6}')
echo "tree: $nfiles files, $mb MB (copied from ${srcs[*]}); $(nproc) CPUs; $runs runs each, median"

cat > "$work/genkey.cnf" <<'CNF'
[ req ]
distinguished_name = dn
prompt = no
x509_extensions = myexts
[ dn ]
CN = bench
[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
CNF
openssl req -x509 -new -nodes -sha256 -days 2 -batch -config "$work/genkey.cnf" \
	-newkey rsa:2048 -outform DER -out "$work/k.der" -keyout "$work/k.pem" 2>/dev/null
find "$tree" -type f -print0 > "$work/list"
cat "$work/list" | xargs -0 cat > /dev/null # warm the page cache

# median TIME of running "$@" $runs times (seconds, 3 decimals)
median() {
	local ts=()
	for ((i = 0; i < runs; i++)); do
		local t0 t1
		t0=$(date +%s%N)
		"$@" >/dev/null 2>&1 || true
		t1=$(date +%s%N)
		ts+=($(((t1 - t0) / 1000000)))
	done
	printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m/1000}'
}
row() { # name seconds
	awk -v n="$1" -v s="$2" -v f="$nfiles" -v b="$bytes" \
		'BEGIN {printf "%-38s %8.3f s %10.0f files/s %8.0f MB/s\n", n, s, f/s, b/1e6/s}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1fx", b/a}'; }

# evmctl ima_sign takes one file per run; both evmctl steps use every CPU
# through xargs -P, as intact does with its workers.
evmctl_sign() { xargs -0 -n 1 -P "$(nproc)" evmctl ima_sign --key "$work/k.pem" < "$work/list"; }
evmctl_verify() { xargs -0 -n 256 -P "$(nproc)" evmctl ima_verify --key "$work/k.der" < "$work/list"; }
sha256sum_all() { xargs -0 -n 256 -P "$(nproc)" sha256sum < "$work/list"; }

t_es=$(median evmctl_sign)
t_is=$(median "$work/intact" sign --key "$work/k.pem" -r "$tree")
t_iv=$(median "$work/intact" verify --cert "$work/k.der" -r "$tree")
"$work/intact" verify --cert "$work/k.der" -r "$tree" | tail -1
evmctl_verify >/dev/null 2>&1 && echo "evmctl ima_verify: all ok" || { echo "bench: evmctl refused intact's labels" >&2; exit 1; }
t_ev=$(median evmctl_verify)
t_sh=$(median sha256sum_all)
t_iv1=$(median "$work/intact" verify -j 1 --cert "$work/k.der" -r "$tree")

if [ -n "${INTACT_BASELINE:-}" ]; then
	# interleaved: baseline, new, baseline, new... so that a change in the
	# machine's load hits both alike
	bs=() ns=() bv=() nv=()
	for ((k = 0; k < runs; k++)); do
		runs_save=$runs runs=1
		bs+=($(median "$INTACT_BASELINE" sign --key "$work/k.pem" -r "$tree"))
		ns+=($(median "$work/intact" sign --key "$work/k.pem" -r "$tree"))
		bv+=($(median "$INTACT_BASELINE" verify --cert "$work/k.der" -r "$tree"))
		nv+=($(median "$work/intact" verify --cert "$work/k.der" -r "$tree"))
		runs=$runs_save
	done
	med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
	t_bs=$(med "${bs[@]}") t_ns=$(med "${ns[@]}") t_bv=$(med "${bv[@]}") t_nv=$(med "${nv[@]}")
fi

echo
row "evmctl ima_sign, $(nproc) parallel" "$t_es"
row "intact sign -r" "$t_is"
row "evmctl ima_verify, $(nproc) parallel" "$t_ev"
row "sha256sum, $(nproc) parallel" "$t_sh"
row "intact verify -r -j 1" "$t_iv1"
row "intact verify -r" "$t_iv"
echo
echo "intact sign   vs evmctl ima_sign:   $(ratio "$t_is" "$t_es") faster"
echo "intact verify vs evmctl ima_verify: $(ratio "$t_iv" "$t_ev") faster"
echo "intact verify vs sha256sum ($(nproc) parallel): $(ratio "$t_iv" "$t_sh") faster"
if [ -n "${INTACT_BASELINE:-}" ]; then
	echo
	row "baseline sign -r (interleaved)" "$t_bs"
	row "intact sign -r (interleaved)" "$t_ns"
	row "baseline verify -r (interleaved)" "$t_bv"
	row "intact verify -r (interleaved)" "$t_nv"
	echo "intact sign   vs baseline: $(ratio "$t_ns" "$t_bs") (above 1: faster)"
	echo "intact verify vs baseline: $(ratio "$t_nv" "$t_bv") (above 1: faster)"
fi
