// SPDX-License-Identifier: Apache-2.0

package quote

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/ls":                           "/usr/bin/ls",
		"a-b_c.d+e,f:g=h@i":                     "a-b_c.d+e,f:g=h@i",
		"größe.txt":                             "größe.txt",
		"my file":                               "$'my file'",
		"":                                      "$''",
		"x\n3 file(s) verified, all ok\nhidden": `$'x\n3 file(s) verified, all ok\nhidden'`,
		"it's":                                  `$'it\'s'`,
		`back\slash`:                            `$'back\\slash'`,
		"\x1b[31mred":                           `$'\e[31mred'`,
		"bad\xff\xfe":                           `$'bad\xff\xfe'`,
		"bad\ufffd":                             `$'bad\ufffd'`,
		"rlo\u202eexe":                          `$'rlo\u202eexe'`,
		"nul\x00del\x7f":                        `$'nul\x00del\x7f'`,
		"$'x'":                                  `$'$\'x\''`,
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %s, want %s", in, got, want)
		}
		if back, err := Unquote(Name(in)); err != nil || back != in {
			t.Errorf("Unquote(Name(%q)) = %q, %v", in, back, err)
		}
	}
	for _, bad := range []string{"$'x", `$'\q'`, `$'\x4'`, "$'a'b'", "a b", `$'\ud800'`} {
		if _, err := Unquote(bad); err == nil {
			t.Errorf("Unquote(%q) accepted", bad)
		}
	}
}

// TestNameIsBash: bash reads the quoted form back as the exact bytes.
func TestNameIsBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	for _, in := range []string{"x\n3 file(s) verified, all ok\nhidden", "it's", `back\slash`, "\x1b[31m", "bad\xff\xfe", "rlo\u202e", "tab\tcr\r", "$HOME `id`", "sp ace"} {
		cmd := exec.Command("bash", "-c", "printf %s "+Name(in))
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8") // \u needs a UTF-8 locale
		out, err := cmd.Output()
		if err != nil || string(out) != in {
			t.Errorf("bash printf %s = %q, %v; want %q", Name(in), out, err, in)
		}
	}
}

// FuzzName: every name round-trips, and its quoted form is one line of
// printable characters (no control byte, no invalid UTF-8).
func FuzzName(f *testing.F) {
	for _, s := range []string{"", "a", "x\ny", "\xff", "\u202e", "'\\", "$'a'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Name(s)
		back, err := Unquote(q)
		if err != nil || back != s {
			t.Fatalf("Unquote(Name(%q)) = %q, %v (quoted %q)", s, back, err, q)
		}
		if !utf8.ValidString(q) {
			t.Fatalf("Name(%q) = %q is not UTF-8", s, q)
		}
		for _, r := range q {
			if !unicode.IsPrint(r) || r == utf8.RuneError {
				t.Fatalf("Name(%q) = %q holds %U", s, q, r)
			}
		}
		if strings.ContainsAny(q, "\n\r") {
			t.Fatalf("Name(%q) spans lines", s)
		}
	})
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"open x.sig: not a regular file": "open x.sig: not a regular file",
		"bad\nline it's":                 `bad\nline it's`,
		"\x1b[2J":                        `\e[2J`,
		`a\b`:                            `a\\b`,
		"\xff":                           `\xff`,
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %s, want %s", in, got, want)
		}
	}
}
