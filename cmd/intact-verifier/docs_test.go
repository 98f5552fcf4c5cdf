package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/intactsec/intact/internal/clidoc"
	"github.com/intactsec/intact/internal/clidoc/clidoctest"
)

// The reference (docs/intact-verifier-flags.md, intact-verifier(8), bash
// and zsh completion) is generated from the flag sets the commands parse
// with. Regenerate with "go generate ./..." (scripts/gendocs.sh).

var update = flag.Bool("update", false, "rewrite the generated reference instead of checking it")

const repoRoot = "../.."

func describeCommand(t testing.TB, words []string) ([]clidoc.Flag, string) {
	var flags []clidoc.Flag
	var help string
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" },
		describe: func(fs *flag.FlagSet, h string) { flags, help = clidoc.FlagsOf(fs), h }}
	if err := dispatch(e, words); !errors.Is(err, errDescribed) {
		t.Fatalf("intact-verifier %s: describe: %v", strings.Join(words, " "), err)
	}
	return flags, help
}

func referenceProgram(t testing.TB) *clidoc.Program {
	p := &clidoc.Program{
		Name:        "intact-verifier",
		ManSection:  "8",
		Description: "attest machines running intact's agent, and the operator API's client",
		Help:        fmt.Sprintf(usage, commandList()),
		Page:        "docs/intact-verifier-flags.md",
		Env: `INTACT_VERIFIER_STATE, INTACT_VERIFIER_SERVER, INTACT_VERIFIER_TOKEN_FILE,
INTACT_VERIFIER_CA, INTACT_VERIFIER_CONFIG
                the client flags of the same names, when not given
INTACT_VERIFIER_TOKEN
                the API token itself, when no token file is named
XDG_CONFIG_HOME, HOME
                where the default client configuration is found`,
		Files: `/var/lib/intact-verifier/    the server's state (serve --state): api-token,
                             verifier.crt, verifier.key, ear.key, verifier.db
~/.config/intact-verifier/client.json
                             the client configuration: {"server": URL,
                             "state": DIR, "token_file": FILE, "ca": FILE}
/usr/lib/systemd/system/intact-verifier.service`,
		SeeAlso: []string{"intact(1)", "intactd(8)"},
	}
	flags, help := describeCommand(t, []string{"serve"})
	p.Commands = append(p.Commands, clidoc.Command{Name: "serve", Summary: "run the verifier and its operator API", Help: help, Flags: flags})
	flags, help = describeCommand(t, []string{"ek"})
	p.Commands = append(p.Commands, clidoc.Command{Name: "ek", Summary: "an agent's endorsement key: hash, certificate, verdict", Help: help, Flags: flags})
	for _, c := range clientCommands {
		flags, help := describeCommand(t, strings.Fields(c.name))
		p.Commands = append(p.Commands, clidoc.Command{Name: c.name, Section: strings.Fields(c.name)[0], Summary: c.summary, Help: help, Flags: flags})
	}
	return p
}

// TestReference fails when the checked-in reference is not what the
// flags generate now; with -update it rewrites it.
func TestReference(t *testing.T) {
	clidoctest.Reference(t, repoRoot, referenceProgram(t), *update)
}

// TestHelpManAndDocsAgree reads the flags back from each command's -h,
// intact-verifier(8) and docs/intact-verifier-flags.md and fails where
// two disagree.
func TestHelpManAndDocsAgree(t *testing.T) {
	clidoctest.FlagsAgree(t, repoRoot, referenceProgram(t), func(t testing.TB, c clidoc.Command) ([]string, bool) {
		full := "intact-verifier " + c.Name
		var stdout, stderr bytes.Buffer
		e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		if code := run(e, append(strings.Fields(c.Name), "-h")); code != 0 {
			t.Errorf("%s -h: exit %d: %s", full, code, stderr.String())
			return nil, false
		}
		help := clidoc.HelpFlags(stdout.String())
		if len(help) == 0 {
			t.Errorf("%s -h lists no flags:\n%s", full, stdout.String())
		}
		return help, true
	})
}
