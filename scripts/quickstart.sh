#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# intact's quickstart: the whole system on one machine, on embedded
# defaults. It builds intact, intactd and intact-verifier; makes a demo
# directory with a file system of its own (a loop-mounted ext4 image) holding
# a few programs; signs them; starts intactd on that mount only (enforcing
# signatures on exec, measuring into the embedded TPM simulator, serving the
# attestation agent on loopback) and intact-verifier (SQLite, on loopback);
# enrolls the agent with a runtime policy generated from the tree; runs a
# demo program; waits until the verifier trusts the machine; and prints what
# to try. See docs/quickstart.md.
#
#   scripts/quickstart.sh [start] [DIR] [--verifier-listen ADDR] [--agent-listen ADDR] [--metrics-listen ADDR] [--interval D]
#   scripts/quickstart.sh stop [DIR]      stop the daemons, unmount (keeps keys, logs, state)
#   scripts/quickstart.sh clean [DIR]     stop, then remove DIR
#   scripts/quickstart.sh status [DIR]    the verifier's view and intactd's counters
#
# DIR defaults to /var/lib/intact-demo. Run it as root (a root shell, or sudo). intactd marks nothing but
# DIR/protected, a mount this script makes.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
prog=quickstart
. "$repo/scripts/common.sh"
marker=.intact-quickstart # in DIR: this script made DIR

# die MESSAGE [HINT]
die() {
	echo "$prog: error: $1" >&2
	[ -z "${2:-}" ] || echo "$prog: hint: $2" >&2
	exit 2
}
step=
say() {
	step=$*
	printf '%s== %s%s\n' "$bold" "$*" "$plain"
}

usage() {
	sed -n '/^#   scripts/,/^# DIR/p' "$0" | sed 's/^# \{0,3\}//' | sed '$d'
	echo "DIR defaults to /var/lib/intact-demo. See docs/quickstart.md."
}

cmd=start
case "${1:-}" in
start | stop | clean | status)
	cmd=$1
	shift
	;;
-h | --help | help)
	usage
	exit 0
	;;
esac
dir=/var/lib/intact-demo
vlisten=127.0.0.1:8443
alisten=127.0.0.1:9443
mlisten=127.0.0.1:9464
interval=1s
dirset=
while [ $# -gt 0 ]; do
	case "$1" in
	--verifier-listen) vlisten=${2:?--verifier-listen needs an address}; shift 2 ;;
	--agent-listen) alisten=${2:?--agent-listen needs an address}; shift 2 ;;
	--metrics-listen) mlisten=${2:?--metrics-listen needs an address}; shift 2 ;;
	--interval) interval=${2:?--interval needs a duration}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	-*) die "unknown option $1 (see $0 --help)" ;;
	*)
		[ -z "$dirset" ] || die "more than one directory given ($dir, $1)"
		dir=$1 dirset=1
		shift
		;;
	esac
done
case "$dir" in
/*) ;;
*) dir=$PWD/$dir ;;
esac
dir=${dir%/}
[ -n "$dir" ] && [ "$dir" != / ] || die "DIR must not be /"

# check_owner PATH: refuse a DIR someone else could swap things in. Every
# existing component from / down to DIR must be a real directory (no
# symlink, which another user might repoint) owned by root and writable
# by nobody else; a parent may be writable by all only with the sticky
# bit (as /tmp): then others cannot rename or remove what root made there.
# A DIR another user could write (or made) is refused: they could swap
# DIR/bin later, and "status" would run their program as root.
check_owner() {
	local p=$1 cur='' part st uid mode type
	local -a parts
	IFS=/ read -r -a parts <<<"${p#/}"
	for part in "" "${parts[@]}"; do
		[ -z "$part" ] && [ -n "$cur" ] && continue
		cur=${cur%/}/$part
		[ -e "$cur" ] || [ -L "$cur" ] || return 0 # the rest is created by this script
		st=$(stat -c '%u %a %F' -- "$cur") || die "cannot stat $cur"
		read -r uid mode type <<<"$st"
		[ "$type" = directory ] ||
			die "$cur is a $type, not a directory" "DIR and its parents must be real directories owned by root (realpath: $(realpath -m -- "$p"))"
		[ "$uid" -eq 0 ] ||
			die "$cur is owned by uid $uid, not root; refusing to use it" "another user could swap programs into DIR that root later runs; give a directory under a root-owned path"
		mode=$((8#$mode))
		if [ $((mode & 8#022)) -ne 0 ]; then
			if [ "$cur" = "$p" ] || [ $((mode & 8#1000)) -eq 0 ]; then
				die "$cur is writable by group or others (mode $(printf %o $mode)); refusing to use it" "another user could swap programs into DIR that root later runs"
			fi
		fi
	done
}
check_owner "$dir"

env_file=$dir/quickstart.env # paths, pids and addresses of this run
mnt=$dir/protected
bin=$dir/bin

[ "$(id -u)" -eq 0 ] || die "run as root (intactd needs CAP_SYS_ADMIN for fanotify; the demo mounts a file system)"

# ---------------------------------------------------------------- stop

# alive PID: the process exists and is not a zombie.
alive() {
	local st
	st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# ours PID NAME: the process runs DIR/bin/NAME (a recycled pid is left alone).
ours() {
	[ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$bin/$2" ]
}

# pids_of NAME: the processes running DIR/bin/NAME.
pids_of() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" != "$bin/$1" ] || echo "${p#/proc/}"
	done
}

# stop_pid PID NAME: SIGTERM, up to 15 s, then SIGKILL.
stop_pid() {
	local pid=$1 name=$2 i
	[ -n "$pid" ] || return 0
	if ! alive "$pid" || ! ours "$pid" "$name"; then
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 150); do
		alive "$pid" || { echo "stopped $name (pid $pid)"; return 0; }
		sleep 0.1
	done
	echo "$name (pid $pid) did not stop after SIGTERM; killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		alive "$pid" || return 0
		sleep 0.1
	done
	echo "$prog: error: $name (pid $pid) is still running" >&2
	return 1
}

stop_all() {
	local rc=0 intactd_pid='' verifier_pid='' pid
	if [ ! -e "$dir/$marker" ]; then
		echo "nothing to stop in $dir (no quickstart there)"
		return 0
	fi
	if [ -f "$env_file" ]; then
		intactd_pid=$(sed -n 's/^intactd_pid=//p' "$env_file")
		verifier_pid=$(sed -n 's/^verifier_pid=//p' "$env_file")
	fi
	# intactd first: its marks go with it (SIGTERM answers what it has read).
	# Then any other process running DIR/bin/intactd or DIR/bin/intact-verifier
	# (a pid not recorded: the env file lost or a start cut short).
	for pid in $intactd_pid $(pids_of intactd); do
		stop_pid "$pid" intactd || rc=1
	done
	for pid in $verifier_pid $(pids_of intact-verifier); do
		stop_pid "$pid" intact-verifier || rc=1
	done
	if mountpoint -q "$mnt"; then
		if ! umount "$mnt" 2>/dev/null; then
			echo "$mnt is busy; detaching it (umount -l)" >&2
			umount -l "$mnt" || rc=1
		fi
		echo "unmounted $mnt"
	fi
	if [ -f "$env_file" ]; then
		sed -i -e '/^intactd_pid=/d' -e '/^verifier_pid=/d' "$env_file"
	fi
	return $rc
}

if [ "$cmd" = stop ]; then
	if [ ! -e "$dir/$marker" ]; then
		echo "nothing to stop in $dir (no quickstart there)"
		exit 0
	fi
	stop_all
	echo "stopped; keys, logs and state stay in $dir (scripts/quickstart.sh clean $dir removes it)"
	exit 0
fi
if [ "$cmd" = clean ]; then
	if [ -e "$dir" ] && [ ! -e "$dir/$marker" ]; then
		die "$dir was not made by the quickstart; not removing it"
	fi
	stop_all
	if [ -e "$dir" ]; then
		mountpoint -q "$mnt" && die "$mnt is still mounted; not removing $dir"
		rm -rf --one-file-system "$dir"
		echo "removed $dir"
	fi
	exit 0
fi

# get KEY: a value of this run from the env file.
get() { sed -n "s/^$1=//p" "$env_file" 2>/dev/null | tail -n 1; }

if [ "$cmd" = status ]; then
	[ -f "$env_file" ] || die "no quickstart in $dir"
	vaddr=$(get verifier_addr)
	"$bin/intact-verifier" --state "$dir/verifier" --server "https://$vaddr" agents show demo || true
	echo
	"$bin/intact" status --socket "$dir/intactd/intactd.sock" || true
	exit 0
fi

# ---------------------------------------------------------------- start

if [ -e "$dir/$marker" ]; then
	pid=$(get intactd_pid)
	if [ -n "$pid" ] && alive "$pid" && ours "$pid" intactd; then
		die "a quickstart is running in $dir (intactd pid $pid); run \"$0 stop $dir\" or \"$0 clean $dir\" first"
	fi
	# A previous run, stopped (or half set up): start afresh.
	say "removing the previous quickstart in $dir"
	stop_all
	rm -rf --one-file-system "$dir"
elif [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
	die "$dir exists and was not made by the quickstart; give another directory"
fi
mountpoint -q "$mnt" 2>/dev/null && die "$mnt is already a mount point; it is not the quickstart's"

# Tools. The embedded TPM simulator is C (go-tpm-tools): building intactd
# needs a C compiler and the OpenSSL headers. No swtpm, tpm2-tools or attr.
# Go, at least the version go.mod names (sudo's secure_path usually lacks
# Go's own directory: require_go looks in /usr/local/go/bin too).
require_go "$prog" "$repo"
missing=()
command -v cc >/dev/null || missing+=(gcc libc6-dev)
[ -e /usr/include/openssl/evp.h ] || missing+=(libssl-dev)
command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
command -v mountpoint >/dev/null && command -v losetup >/dev/null || missing+=(util-linux mount)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates) # go's module downloads
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]} (apt-get)"
	command -v apt-get >/dev/null || die "missing ${missing[*]}, and no apt-get to install them"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# From here on a failure stops whatever was started.
cleanup_on_error() {
	local rc=$?
	trap - EXIT
	if [ $rc -ne 0 ]; then
		echo "$prog: error: the quickstart failed (exit $rc) at: $step; stopping what it started" >&2
		for f in verifier intactd; do
			if [ -s "$dir/$f.log" ]; then
				echo "--- last lines of $dir/$f.log" >&2
				tail -n 15 "$dir/$f.log" >&2
			fi
		done
		stop_all >&2 || true
		echo "$prog: hint: logs and state stay in $dir; \"$0 clean $dir\" removes it" >&2
	fi
	exit $rc
}
trap cleanup_on_error EXIT
trap 'exit 130' INT TERM HUP

# DIR is made here, exclusively (mkdir fails if something appeared since
# the checks), mode 0700; its parents, if missing, root's with 0755.
mkdir -p -m 755 -- "$(dirname -- "$dir")"
if [ -e "$dir" ]; then
	check_owner "$dir" # an empty DIR root prepared
	chmod 700 "$dir"
else
	mkdir -m 700 -- "$dir" || die "cannot create $dir"
fi
check_owner "$dir"
touch "$dir/$marker"
: >"$env_file"
record() { echo "$1=$2" >>"$env_file"; }
record dir "$dir"

say "building intact, intactd and intact-verifier into $bin"
# -tags intact_sim: intactd measures into the embedded TPM simulator (--tpm
# sim), which release builds leave out; cgo: the simulator is C.
(cd "$repo" && CGO_ENABLED=1 go build -tags intact_sim -o "$bin/" ./cmd/intact ./cmd/intactd ./cmd/intact-verifier)
intact=$bin/intact

say "a file system for the demo: a 64 MiB ext4 image loop-mounted on $mnt"
mkdir -p "$mnt"
truncate -s 64M "$dir/protected.img"
mkfs.ext4 -q -F -I 256 -O ^has_journal "$dir/protected.img"
mount -o loop,nodev,nosuid "$dir/protected.img" "$mnt" ||
	die "cannot loop-mount $dir/protected.img (no loop devices here? try: modprobe loop)"
mountpoint -q "$mnt" || die "$mnt is not a mount point after mounting"
record mounted "$mnt"

say "demo programs in $mnt"
mkdir -p "$mnt/bin" "$mnt/etc"
echo "hello from a protected, measured program" >"$mnt/etc/greeting"
cp /usr/bin/date "$mnt/bin/clock"
cat >"$mnt/bin/hello" <<EOF
#!/bin/sh
# The quickstart's demo program: it reads a file and runs a program, all on
# the protected mount.
cat "$mnt/etc/greeting"
"$mnt/bin/clock" '+it is %H:%M:%S'
EOF
chmod 755 "$mnt/bin/hello" "$mnt/bin/clock"
chmod 644 "$mnt/etc/greeting"
find "$mnt" -type f -printf '  %p\n' | sort

say "a signing key; sign every file (security.ima signatures and portable security.evm signatures)"
mkdir -p "$dir/keys"
"$intact" keygen --type ec-p256 --key "$dir/keys/signing.pem" --cert "$dir/keys/signing.der"
"$intact" sign --key "$dir/keys/signing.pem" --evm portable -r "$mnt"
"$intact" verify --cert "$dir/keys/signing.der" -r "$mnt"

say "intactd's policy and the verifier's runtime policy"
cat >"$dir/intactd.policy" <<'EOF'
# The quickstart's intactd policy (docs/policy.md).
# Executing a file needs a valid signature by a trusted key (denied otherwise).
appraise func=BPRM_CHECK appraise_type=imasig
# Everything executed or read is measured into the list and PCR 13, which the
# verifier attests: also what appraisal does not stop, such as a script read
# by an interpreter ("sh FILE").
measure func=BPRM_CHECK mask=MAY_EXEC
measure func=FILE_CHECK mask=MAY_READ
EOF
"$intact" policy generate --tree "$mnt" --out "$dir/runtime-policy.json"

say "starting intact-verifier (SQLite in $dir/verifier, log $dir/verifier.log)"
mkdir -p "$dir/verifier"
# EK trust: the TPM makers' CAs shipped in dist/ek-ca, and an allowlist the
# simulator's EK is added to below (the verifier reads both at each enrollment).
ek_allow=$dir/verifier/ek-allow
[ -e "$ek_allow" ] || echo "# EKs trusted by name (intact-verifier serve --ek-allow)" >"$ek_allow"
# The log exists before the loop below reads it (the background job opens
# it only once it runs; sed on a missing file would end the script).
: >"$dir/verifier.log"
setsid "$bin/intact-verifier" serve --state "$dir/verifier" --listen "$vlisten" --interval "$interval" \
	--ek-ca "$repo/dist/ek-ca" --ek-allow "$ek_allow" \
	</dev/null >"$dir/verifier.log" 2>&1 &
record verifier_pid $!
vaddr=
for _ in $(seq 600); do # up to 30 s
	vaddr=$(sed -n 's/.*intact-verifier serving" addr=\([^ ]*\).*/\1/p' "$dir/verifier.log" | head -n 1)
	[ -n "$vaddr" ] && break
	alive "$(get verifier_pid)" || break
	sleep 0.05
done
if [ -z "$vaddr" ]; then
	die "intact-verifier did not start; see $dir/verifier.log" \
		"is $vlisten in use? Give another address: --verifier-listen 127.0.0.1:0 picks a free port"
fi
record verifier_addr "$vaddr"
verifier=("$bin/intact-verifier" --state "$dir/verifier" --server "https://$vaddr")

say "starting intactd on $mnt (enforce, TPM simulator, agent on $alisten; log $dir/intactd.log)"
setsid "$bin/intactd" --watch "$mnt" --policy "$dir/intactd.policy" --cert "$dir/keys/signing.der" \
	--mode enforce --tpm sim --agent-listen "$alisten" --metrics-listen "$mlisten" --state-dir "$dir/intactd" \
	</dev/null >"$dir/intactd.log" 2>&1 &
record intactd_pid $!
aaddr=
for _ in $(seq 600); do # up to 30 s
	if grep -q '"msg":"intactd enforcing"' "$dir/intactd.log"; then
		aaddr=$(sed -n 's/.*"msg":"serving attestation agent","addr":"\([^"]*\)".*/\1/p' "$dir/intactd.log" | head -n 1)
		break
	fi
	alive "$(get intactd_pid)" || break
	sleep 0.05
done
if [ -z "$aaddr" ]; then
	die "intactd did not start; see $dir/intactd.log" \
		"is $alisten or $mlisten in use? Give other addresses: --agent-listen 127.0.0.1:0 and --metrics-listen 127.0.0.1:0 pick free ports"
fi
record agent_addr "$aaddr"
maddr=$(sed -n 's/.*"msg":"serving metrics","addr":"\([^"]*\)".*/\1/p' "$dir/intactd.log" | head -n 1)
[ -n "$maddr" ] || die "intactd does not say where it serves metrics; see $dir/intactd.log"
record metrics_url "$maddr"

say "running the demo program (appraised, then measured)"
"$mnt/bin/hello"

say "allowlisting the TPM simulator's endorsement key (it has no maker's certificate)"
# A real TPM's EK certificate chains to its maker's CA (--ek-ca); the
# embedded simulator has none, so its EK is trusted by name, on the spot:
# acceptable for a demo on one machine, not for a fleet.
ek_hash=$("$bin/intact-verifier" ek "$aaddr" --cert "$dir/intactd/agent/tls.crt" | sed -n 's/^ek-hash:[[:space:]]*//p') || true
[ -n "$ek_hash" ] || die "could not read the agent's endorsement key (intact-verifier ek $aaddr)"
grep -q "^$ek_hash " "$ek_allow" || echo "$ek_hash quickstart-simulator" >>"$ek_allow"
echo "allowlisted EK $ek_hash as quickstart-simulator in $ek_allow"

say "enrolling the agent with the verifier"
"${verifier[@]}" policy add demo "$dir/runtime-policy.json"
"${verifier[@]}" agents add demo "$aaddr" --policy demo --cert "$dir/intactd/agent/tls.crt"
state=
for _ in $(seq 300); do # 30 s and more
	state=$("${verifier[@]}" agents show demo 2>/dev/null | sed -n 's/^state:[[:space:]]*//p') || true
	[ "$state" = trusted ] || [ "$state" = failed ] && break
	sleep 0.1
done
"${verifier[@]}" agents show demo | grep -v '^history:' || true
[ "$state" = trusted ] || die "the agent is not trusted (state \"$state\"); see $dir/verifier.log"
record started "$(date -u +%FT%TZ)"
trap - EXIT INT TERM HUP

v="${verifier[*]}"
alias_line="alias iv='$v'"
cat <<EOF

$(say "the quickstart is running")
What it did:
  - built intact, intactd and intact-verifier into $bin
  - made an ext4 file system ($dir/protected.img) mounted on $mnt, with
    bin/hello (a script), bin/clock (a copy of date) and etc/greeting
  - made a signing key ($dir/keys) and signed every file (security.ima, security.evm)
  - started intactd on that mount only, enforcing: executing a file needs a valid
    signature; everything executed or read is measured into the TPM simulator's PCR 13
  - started intact-verifier, gave it a runtime policy generated from the tree
    ($dir/runtime-policy.json) and enrolled intactd's agent as "demo"
  - trusted the TPM simulator's endorsement key by allowlisting it ($dir/verifier/ek-allow):
    the simulator has no maker's EK certificate; a real TPM's chains to dist/ek-ca
  - ran $mnt/bin/hello; the verifier attests the machine every $interval: trusted

Where to look:
  intactd log       $dir/intactd.log (JSON; denials are "msg":"denied")
  intactd state     $dir/intactd (measurement list binary_runtime_measurements, agent identity, socket)
  verifier log      $dir/verifier.log
  verifier state    $dir/verifier (verifier.db, api-token, verifier.crt)
  keys              $dir/keys     policies  $dir/intactd.policy, $dir/runtime-policy.json

Use the tools from your shell:
  export PATH=$bin:\$PATH
  $alias_line     # the verifier's client, its server and state given
  iv agents list

Try it:
  # the verifier's view, intactd's counters and its Prometheus metrics
  $v agents show demo
  $bin/intact status --socket $dir/intactd/intactd.sock
  curl -s $maddr | grep '^intactd_'

  # tamper with a protected program, then run it
  echo 'echo tampered' >> $mnt/bin/hello
  $mnt/bin/hello
  #    denied: exit 126, Operation not permitted (bash words it
  #    "/bin/sh: bad interpreter: Operation not permitted")
  grep '"denied"' $dir/intactd.log
  #    intactd's record of the denial: verdict content-changed
  $v agents show demo
  #    within a few seconds: state failed,
  #    reason policy: $mnt/bin/hello: digest-mismatch

  The denied exec did not run, so it is not measured. But bash then reads the
  file to explain the error, and intactd measures every read on the mount (the
  FILE_CHECK rule of $dir/intactd.policy): the verifier sees the tampered
  content and names the file. Any read does the same: cat $mnt/bin/hello, or
  sh $mnt/bin/hello, which even runs it (an interpreter reading a script is an
  open, measured but not appraised: attestation sees what enforcement cannot).
  A failed policy check is sticky: stop the quickstart and run it again to
  start afresh.

Stop and clean up:
  $repo/scripts/quickstart.sh stop $dir     # stop the daemons, unmount (keeps keys and logs)
  $repo/scripts/quickstart.sh clean $dir    # the same, and remove $dir
EOF
