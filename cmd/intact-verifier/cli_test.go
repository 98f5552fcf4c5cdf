package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "no command"},
		{[]string{"-h"}, 0, ""},
		{[]string{"serve"}, 2, "usage: serve"},
		{[]string{"serve", "--state", "x", "--interval", "1ms"}, 2, "too short"},
		{[]string{"agents"}, 2, "want a command"},
		{[]string{"--state", "/nonexistent", "agents", "list"}, 2, "no such file"},
		{[]string{"--token-file", "x", "agents", "list"}, 2, "give --state"},
		{[]string{"--bogus", "agents", "list"}, 2, "flag provided but not defined"},
	} {
		var out, errb bytes.Buffer
		code := run(&env{stdout: &out, stderr: &errb}, tc.args)
		if code != tc.code || !strings.Contains(errb.String(), tc.msg) {
			t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.msg)
		}
		if code == 2 && !strings.HasPrefix(errb.String(), "intact-verifier: error: ") {
			t.Errorf("run(%q): stderr %q lacks the error prefix", tc.args, errb.String())
		}
	}
}
