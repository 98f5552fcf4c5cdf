// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/intactsec/intact/internal/clidoc"
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
	p := referenceProgram(t)
	if *update {
		if err := clidoc.Generate(repoRoot, p); err != nil {
			t.Fatal(err)
		}
		return
	}
	stale, err := clidoc.Check(repoRoot, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stale {
		t.Errorf("stale: %s", s)
	}
	if len(stale) > 0 {
		t.Errorf("the reference is generated from intactd's flags: run %s and commit the result", clidoc.Regenerate)
	}
}

// TestHelpManAndDocsAgree reads the flags back from intactd -h,
// intactd(8) and docs/intactd-flags.md and fails where two disagree.
func TestHelpManAndDocsAgree(t *testing.T) {
	p := referenceProgram(t)
	var stderr bytes.Buffer
	if code := run([]string{"-h"}, &stderr); code != 0 {
		t.Fatalf("intactd -h: exit %d", code)
	}
	help := clidoc.HelpFlags(stderr.String())
	man, err := os.ReadFile(filepath.Join(repoRoot, clidoc.ManPath(p)))
	if err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(repoRoot, p.Page))
	if err != nil {
		t.Fatal(err)
	}
	if inMan := clidoc.ManFlags(string(man))[""]; !slices.Equal(help, inMan) {
		t.Errorf("intactd -h lists %v, intactd(8) %v (run %s)", help, inMan, clidoc.Regenerate)
	}
	if inMD := clidoc.MarkdownFlags(string(page))["intactd"]; !slices.Equal(help, inMD) {
		t.Errorf("intactd -h lists %v, %s %v (run %s)", help, p.Page, inMD, clidoc.Regenerate)
	}
}
