#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Regenerates the dashboard screenshots in docs/img from the browser tests
# (headless Chromium: apt-get install -y chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || PATH=$PATH:/usr/local/go/bin
go test -count=1 -run 'TestBrowser' ./attest/ui -args -screenshots "$PWD/docs/img"
