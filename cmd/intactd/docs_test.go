// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"flag"
	"io"
	"testing"

	"github.com/intactsec/intact/internal/clidoc"
	"github.com/intactsec/intact/internal/clidoc/clidoctest"
)

// The reference (docs/intactd-flags.md, intactd(8), bash and zsh
// completion) is generated from the flag set intactd parses with.
// Regenerate with "go generate ./..." (scripts/gendocs.sh).

var update = flag.Bool("update", false, "rewrite the generated reference instead of checking it")

const repoRoot = "../.."

func referenceProgram(t testing.TB) *clidoc.Program {
	var fs *flag.FlagSet
	if _, err := parseFlagsWith(nil, io.Discard, func(f *flag.FlagSet) { fs = f }); err != errDescribed {
		t.Fatalf("describe: %v", err)
	}
	return &clidoc.Program{
		Name:        "intactd",
		ManSection:  "8",
		Description: "enforce file integrity with fanotify under an IMA policy",
		Help:        usage,
		Flags:       clidoc.FlagsOf(fs),
		Page:        "docs/intactd-flags.md",
		Env: `INTACTD_EVM_PASSPHRASE    the EVM key's passphrase when no
                          --evmkey-passphrase-file is given
NOTIFY_SOCKET, WATCHDOG_USEC
                          set by systemd (Type=notify, WatchdogSec=)`,
		Files: `/etc/intact/intactd.json        the configuration (--config); keys as the flags'
                                 names with "_" for "-", e.g. "state_dir"
/var/lib/intactd/                state: the measurement list, intactd.sock
/usr/lib/systemd/system/intactd.service`,
		SeeAlso: []string{"intact(1)", "intact-verifier(8)", "fanotify(7)", "systemd.service(5)"},
	}
}

// TestReference fails when the checked-in reference is not what the
// flags generate now; with -update it rewrites it.
func TestReference(t *testing.T) {
	clidoctest.Reference(t, repoRoot, referenceProgram(t), *update)
}

// TestHelpManAndDocsAgree reads the flags back from intactd -h,
// intactd(8) and docs/intactd-flags.md and fails where two disagree.
func TestHelpManAndDocsAgree(t *testing.T) {
	clidoctest.FlagsAgree(t, repoRoot, referenceProgram(t), func(t testing.TB, _ clidoc.Command) ([]string, bool) {
		var stderr bytes.Buffer
		if code := run([]string{"-h"}, &stderr); code != 0 {
			t.Fatalf("intactd -h: exit %d", code)
		}
		return clidoc.HelpFlags(stderr.String()), true
	})
}
