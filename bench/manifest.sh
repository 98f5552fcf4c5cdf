#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tree manifests beside AIDE, same tree, same digest (sha256 only), same
# attributes, in the same run:
#   intact manifest create  vs  aide --init
#   intact manifest check   vs  aide --check
#
#   bench/manifest.sh [RUNS] [DIR]      (root; defaults: 3 runs, /usr)
#
# DIR is only read. AIDE runs with its default --workers=1 and with
# --workers=2 (this machine has 2 CPUs); the ratio is against AIDE's faster
# one. Caches are warm (the tree is read once before timing). Prints the
# median wall time of each step and intact's speed as a multiple of AIDE's.
# Results go in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
dir=${2:-/usr}
command -v aide >/dev/null || { echo "bench: aide missing (apt-get install -y aide)" >&2; exit 2; }
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin

work=$(mktemp -d /var/tmp/intact-bench-manifest.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/intact" ./cmd/intact
"$work/intact" keygen --type ec-p256 --key "$work/k.pem" --cert "$work/k.der" 2>/dev/null

# The same attributes as intact records: type, permissions, owner, group,
# size, symlink target, sha256, xattrs (all of them: a superset of
# intact's four), one file system.
cat >"$work/aide.conf" <<CONF
database_in=file:$work/aide.db
database_out=file:$work/aide.db.new
gzip_dbout=no
report_url=stdout
log_level=error
Same = ftype+p+u+g+s+l+sha256+xattrs
$dir Same
CONF

entries=$(find "$dir" -xdev | wc -l)
files=$(find "$dir" -xdev -type f | wc -l)
bytes=$(find "$dir" -xdev -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
echo "tree: $dir: $entries entries, $files regular files, $(awk -v b="$bytes" 'BEGIN {printf "%.0f", b/1e6}') MB; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg); $runs runs each, median"
echo "warming the page cache..."
find "$dir" -xdev -type f -print0 | xargs -0 cat >/dev/null 2>&1 || true

# time_cmd NAME CMD... : wall seconds of one run, appended to $work/NAME
time_cmd() {
	local name=$1
	shift
	local s e
	s=$(date +%s.%N)
	"$@" >/dev/null 2>"$work/err" || {
		local rc=$?
		# aide --check exits 1-7 when it finds changes (the environment may
		# add files between runs); anything else is a failure
		if [ "$name" != "aide-check-1" ] && [ "$name" != "aide-check-2" ] || [ $rc -gt 7 ]; then
			echo "bench: $name failed ($rc): $(cat "$work/err")" >&2
			exit 2
		fi
	}
	e=$(date +%s.%N)
	awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f\n", e-s}' >>"$work/$name"
}

median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

for ((i = 1; i <= runs; i++)); do
	for w in 1 2; do
		time_cmd "aide-init-$w" aide -c "$work/aide.conf" --workers=$w --init
		mv "$work/aide.db.new" "$work/aide.db"
		time_cmd "aide-check-$w" aide -c "$work/aide.conf" --workers=$w --check
	done
	time_cmd intact-create "$work/intact" manifest create --key "$work/k.pem" -o "$work/m" "$dir"
	time_cmd intact-check "$work/intact" manifest check --cert "$work/k.der" "$work/m"
	echo "run $i done"
done

printf '\n%-28s %10s\n' step "median s"
for n in aide-init-1 aide-init-2 intact-create aide-check-1 aide-check-2 intact-check; do
	printf '%-28s %10s\n' "$n" "$(median $n)"
done
best() { awk -v a="$(median "$1")" -v b="$(median "$2")" 'BEGIN {print (a < b) ? a : b}'; }
ai=$(best aide-init-1 aide-init-2)
ac=$(best aide-check-1 aide-check-2)
ic=$(median intact-create)
ik=$(median intact-check)
awk -v ai="$ai" -v ac="$ac" -v ic="$ic" -v ik="$ik" -v by="$bytes" 'BEGIN {
	printf "\ncreate: intact %.2f s (%.0f MB/s) vs aide --init %.2f s: %.1fx\n", ic, by/1e6/ic, ai, ai/ic
	printf "check:  intact %.2f s (%.0f MB/s) vs aide --check %.2f s: %.1fx\n", ik, by/1e6/ik, ac, ac/ik
}'
echo "manifest: $(wc -c <"$work/m") bytes; aide db: $(wc -c <"$work/aide.db") bytes; load after $(cut -d' ' -f1-3 /proc/loadavg)"
