// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runIntact(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := run(e, args)
	return code, out.String(), errb.String()
}

func TestPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("# comment\nmeasure  func=PATH_CHECK mask=^MAY_READ uid=0\nappraise_type=imasig appraise func=BPRM_CHECK\n"), 0o644)
	code, out, _ := runIntact("policy", "check", good)
	want := "measure func=FILE_CHECK mask=^MAY_READ uid=0\nappraise func=BPRM_CHECK appraise_type=imasig\n"
	if code != 0 || out != want {
		t.Errorf("policy check good = %d %q, want 0 %q", code, out, want)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("measure func=BPRM_CHECK\n\tappraise obj_type=bin_t\n"), 0o644)
	code, out, errs := runIntact("policy", "check", bad)
	if code != 1 || out != "" || !strings.Contains(errs, "intact: error: "+bad+":2:11: LSM labels") {
		t.Errorf("policy check bad = %d %q %q", code, out, errs)
	}
	if code, out, _ := runIntact("policy", "check", "tcb|appraise_tcb"); code != 0 || !strings.Contains(out, "appraise fowner=0\n") || !strings.Contains(out, "measure func=BPRM_CHECK mask=MAY_EXEC\n") {
		t.Errorf("policy check built-ins = %d %q", code, out)
	}
	if code, _, errs := runIntact("policy", "check", filepath.Join(dir, "missing")); code != 2 || !strings.Contains(errs, "policy "+filepath.Join(dir, "missing")+": no such file") {
		t.Errorf("missing file = %d %q", code, errs)
	}
	for _, args := range [][]string{{"policy"}, {"policy", "lint", good}, {"policy", "check"}, {"policy", "check", good, good}} {
		if code, _, _ := runIntact(args...); code != 2 {
			t.Errorf("%v = exit %d, want 2", args, code)
		}
	}
}
