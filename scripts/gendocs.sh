#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates the command-line reference from the flags the binaries parse
# with: the command sections of docs/cli.md, docs/intactd-flags.md and
# docs/intact-verifier-flags.md (between their GENERATED markers), the man
# pages docs/man/*.{1,8} and the shell completion under dist/completion/.
# Run it after adding or changing a flag, and commit what it changes; the
# TestReference tests of cmd/* fail until you do.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
go generate ./cmd/...
git status --short -- docs dist 2>/dev/null || true
