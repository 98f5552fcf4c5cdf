# Sourced by intact's scripts (quickstart.sh, demo.sh, test.sh).
# SPDX-License-Identifier: Apache-2.0

# Bold headings only on a terminal (and not under NO_COLOR): no escape codes
# in logs, pipes or CI output.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	bold=$'\033[1m' plain=$'\033[0m'
else
	bold='' plain=''
fi

# require_go PROG REPO: finds go (sudo's secure_path and a root login often
# lack /usr/local/go/bin) and checks that it is at least the version REPO's
# go.mod names, or exits 2 with a message saying what is needed.
require_go() {
	local prog=$1 need have
	need=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' "$2/go.mod")
	command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
	if ! command -v go >/dev/null; then
		echo "$prog: error: go is not on PATH, nor in /usr/local/go/bin" >&2
		echo "$prog: hint: intact needs Go $need or newer (https://go.dev/dl/)" >&2
		exit 2
	fi
	# The local toolchain's own version: outside the module, so that go does
	# not switch to (or download) the one go.mod names.
	have=$(cd / && GOTOOLCHAIN=local go env GOVERSION 2>/dev/null) || have=unknown
	have=${have%% *}
	have=${have#go}
	case $have in
	devel*) return 0 ;; # a development toolchain: trust it
	esac
	if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" != "$need" ]; then
		echo "$prog: error: intact needs Go $need or newer; $(command -v go) is go$have" >&2
		echo "$prog: hint: install a newer Go (https://go.dev/dl/) and put it first on PATH" >&2
		exit 2
	fi
}
