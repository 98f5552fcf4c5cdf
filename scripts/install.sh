#!/usr/bin/env bash
# Installs intact from this repository, as a package would: builds intact,
# intactd and intact-verifier and puts them, the systemd units, the man
# pages, the shell completion and the docs where the units and man expect
# them (the list: "scripts/install.sh --list"). Nothing is enabled or
# started, and no configuration is written: see docs/install.md.
#
#   scripts/install.sh [--destdir DIR]             install (as root when DIR is /)
#   scripts/install.sh --uninstall [--destdir DIR]  remove exactly what was installed
#   scripts/install.sh --list                       print the installed paths
#
# --destdir installs below DIR instead of / (a staging tree; scripts/package.sh
# builds the .deb from one). The paths installed are recorded in
# DIR/usr/share/intact/installed-files, which --uninstall reads.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
prog=install
# shellcheck source=common.sh
. "$repo/scripts/common.sh"

die() {
	echo "$prog: error: $1" >&2
	[ -z "${2:-}" ] || echo "$prog: hint: $2" >&2
	exit 2
}

destdir="" action=install
while [ $# -gt 0 ]; do
	case $1 in
	--destdir)
		[ $# -ge 2 ] || die "--destdir needs a DIR"
		destdir=${2%/}
		shift 2
		;;
	--uninstall) action=uninstall && shift ;;
	--list) action=list && shift ;;
	-h | --help)
		sed -n '/^#   scripts/,/^# DIR/p' "$0" | sed 's/^# \{0,3\}//'
		exit 0
		;;
	*) die "unknown argument '$1'" "scripts/install.sh --help" ;;
	esac
done
if [ -n "$destdir" ]; then
	mkdir -p "$destdir"
	destdir=$(cd "$destdir" && pwd)
	[ "$destdir" != / ] || destdir=""
fi
manifest=/usr/share/intact/installed-files

# files prints "SOURCE DESTINATION MODE" for every installed file; SOURCE is
# relative to the build directory (b/) or the repository.
files() {
	cat <<-'LIST'
		b/intact                            /usr/bin/intact                                   0755
		b/intactd                           /usr/sbin/intactd                                 0755
		b/intact-verifier                   /usr/bin/intact-verifier                          0755
		dist/systemd/intactd.service        /usr/lib/systemd/system/intactd.service           0644
		dist/systemd/intact-verifier.service /usr/lib/systemd/system/intact-verifier.service  0644
		b/intact.1.gz                       /usr/share/man/man1/intact.1.gz                   0644
		b/intactd.8.gz                      /usr/share/man/man8/intactd.8.gz                  0644
		b/intact-verifier.8.gz              /usr/share/man/man8/intact-verifier.8.gz          0644
		dist/completion/bash/intact         /usr/share/bash-completion/completions/intact     0644
		dist/completion/bash/intactd        /usr/share/bash-completion/completions/intactd    0644
		dist/completion/bash/intact-verifier /usr/share/bash-completion/completions/intact-verifier 0644
		dist/completion/zsh/_intact         /usr/share/zsh/vendor-completions/_intact         0644
		dist/completion/zsh/_intactd        /usr/share/zsh/vendor-completions/_intactd        0644
		dist/completion/zsh/_intact-verifier /usr/share/zsh/vendor-completions/_intact-verifier 0644
		dist/intactd.json.example           /usr/share/doc/intact/examples/intactd.json       0644
		README.md                           /usr/share/doc/intact/README.md                   0644
		LICENSE                             /usr/share/doc/intact/LICENSE                     0644
	LIST
	local f
	for f in "$repo"/docs/*.md; do
		printf 'docs/%s /usr/share/doc/intact/%s 0644\n' "${f##*/}" "${f##*/}"
	done
	# TPM makers' EK CA certificates: intact-verifier.service's --ek-ca.
	for f in "$repo"/dist/ek-ca/*; do
		printf 'dist/ek-ca/%s /usr/share/intact/ek-ca/%s 0644\n' "${f##*/}" "${f##*/}"
	done
}

# Directories this installation may create and --uninstall removes when
# they are empty, deepest first.
owned_dirs=(/usr/share/doc/intact/examples /usr/share/doc/intact /usr/share/intact/ek-ca /usr/share/intact)

reload_systemd() {
	if [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
		systemctl daemon-reload || true
	fi
}

case $action in
list)
	files | awk '{print $2}'
	echo "$manifest"
	exit 0
	;;
uninstall)
	[ -f "$destdir$manifest" ] || die "$destdir$manifest: not found: nothing installed by this script" \
		"a package (dpkg -r intact) is removed by its package manager"
	while IFS= read -r p; do
		case $p in
		/usr/*) rm -f -- "$destdir$p" ;;
		*) die "$destdir$manifest: unexpected path '$p'" ;;
		esac
	done <"$destdir$manifest"
	rm -f -- "$destdir$manifest"
	for d in "${owned_dirs[@]}"; do
		rmdir -- "$destdir$d" 2>/dev/null || true
	done
	reload_systemd
	echo "removed intact from ${destdir:-/}"
	exit 0
	;;
esac

if [ -z "$destdir" ]; then
	[ "$(id -u)" = 0 ] || die "installing to / needs root" "run it as root, or with --destdir DIR"
	if command -v dpkg-query >/dev/null && dpkg-query -S /usr/bin/intact >/dev/null 2>&1; then
		die "/usr/bin/intact belongs to an installed package" "remove it first (dpkg -r intact)"
	fi
fi
require_go "$prog" "$repo"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
echo "${bold}== building intact, intactd, intact-verifier${plain}"
(
	cd "$repo"
	# -buildvcs=true: --version names the commit (some setups default it off).
	# Go stamps a clone, not a "git worktree" checkout (.git a file there).
	# No build tags: release binaries have no TPM simulator (-tags
	# intact_sim is for tests and the quickstart; internal/deps checks).
	# cmd/intact-agent is not shipped: intactd serves the agent.
	for c in intact intactd intact-verifier; do
		go build -trimpath -buildvcs=true -o "$build/$c" "./cmd/$c"
	done
)
for m in intact.1 intactd.8 intact-verifier.8; do
	gzip -9 -n -c "$repo/docs/man/$m" >"$build/$m.gz"
done

echo "${bold}== installing into ${destdir:-/}${plain}"
installed=()
while read -r src dst mode; do
	case $src in
	b/*) src=$build/${src#b/} ;;
	*) src=$repo/$src ;;
	esac
	install -D -m "$mode" -- "$src" "$destdir$dst"
	installed+=("$dst")
done < <(files)
mkdir -p "$destdir${manifest%/*}"
printf '%s\n' "${installed[@]}" "$manifest" >"$destdir$manifest"
chmod 0644 "$destdir$manifest"
reload_systemd
echo "installed ${#installed[@]} files; $("$destdir/usr/bin/intact" --version)"
if [ -z "$destdir" ]; then
	cat <<-EOF
		next: write /etc/intact/intactd.json (example: /usr/share/doc/intact/examples/intactd.json),
		      then systemctl enable --now intactd; and/or systemctl enable --now intact-verifier
		remove with: scripts/install.sh --uninstall
	EOF
fi
