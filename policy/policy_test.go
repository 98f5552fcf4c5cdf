// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t testing.TB, text string) *Policy {
	t.Helper()
	p, err := Parse("test", []byte(text))
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return p
}

func TestParseNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"measure func=BPRM_CHECK mask=MAY_EXEC", "measure func=BPRM_CHECK mask=MAY_EXEC"},
		{"  measure\tfunc=PATH_CHECK   mask=^MAY_READ euid=0  # root reads", "measure func=FILE_CHECK mask=^MAY_READ euid=0"},
		{"dont_measure fsmagic=9FA0", "dont_measure fsmagic=0x9fa0"},
		{"dont_measure func=FILE_CHECK fsmagic=0x01021994", "dont_measure func=FILE_CHECK fsmagic=0x1021994"},
		{"appraise_type=imasig appraise fowner=0", "appraise fowner=0 appraise_type=imasig"},
		{"appraise func=FILE_MMAP mask=MAY_EXEC", "appraise func=MMAP_CHECK mask=MAY_EXEC"},
		{"audit fgroup>100 fowner<1000 uid=0", "audit uid=0 fowner<1000 fgroup>100"},
		{"measure fsuuid=6A1B8C3D-0000-4000-8000-00000000ABCD pcr=11 template=ima-sig",
			"measure pcr=11 fsuuid=6a1b8c3d-0000-4000-8000-00000000abcd template=ima-sig"},
		{"dont_appraise fsname=tmpfs", "dont_appraise fsname=tmpfs"},
		{"measure func=MMAP_CHECK_REQPROT egid>10 gid... ", ""},
	}
	for _, tt := range tests {
		p, err := Parse("t", []byte(tt.in))
		if tt.want == "" {
			if err == nil {
				t.Errorf("Parse(%q) = %q, want error", tt.in, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got := strings.TrimSuffix(p.String(), "\n"); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
		again := mustParse(t, p.String())
		if again.String() != p.String() {
			t.Errorf("normalized form of %q not stable: %q", tt.in, again)
		}
	}
}

func TestParseCommentsAndLines(t *testing.T) {
	p := mustParse(t, "# comment\n\n   \nmeasure func=BPRM_CHECK # trailing\r\n\tappraise fowner=0\n")
	if len(p.Rules) != 2 || p.Rules[0].Line != 4 || p.Rules[1].Line != 5 {
		t.Fatalf("rules = %+v, want two rules on lines 4 and 5", p.Rules)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in        string
		line, col int
		err       error
		msg       string
	}{
		{"measure func=BPRM_CHECK bogus", 1, 25, ErrSyntax, "unknown token"},
		{"\n\n  measure  func=MODULE_CHECK", 3, 12, ErrUnsupported, "kernel-only hook"},
		{"measure func=NOPE", 1, 9, ErrSyntax, "unknown func"},
		{"hash func=FILE_CHECK", 1, 1, ErrUnsupported, "hash/dont_hash"},
		{"appraise obj_type=bin_t", 1, 10, ErrUnsupported, "LSM"},
		{"appraise permit_directio", 1, 10, ErrUnsupported, "permit_directio"},
		{"appraise appraise_algos=sha256", 1, 10, ErrUnsupported, "appraise_algos"},
		{"appraise appraise_type=imasig|modsig", 1, 10, ErrUnsupported, "modsig"},
		{"appraise appraise_type=bogus", 1, 10, ErrSyntax, "appraise_type"},
		{"measure appraise_type=imasig", 1, 9, ErrSyntax, "only valid on appraise"},
		{"appraise pcr=11", 1, 10, ErrSyntax, "only valid on measure"},
		{"measure pcr=24", 1, 9, ErrSyntax, "PCR index"},
		{"measure template=ima", 1, 9, ErrUnsupported, "template"},
		{"measure mask=MAY_SNIFF", 1, 9, ErrSyntax, "unknown mask"},
		{"measure fsmagic=xyz", 1, 9, ErrSyntax, "hex"},
		{"measure fsmagic=", 1, 9, ErrSyntax, "empty value"},
		{"measure fsuuid=1234", 1, 9, ErrSyntax, "UUID"},
		{"measure uid=-1", 1, 9, ErrSyntax, "valid id"},
		{"measure uid=4294967295", 1, 9, ErrSyntax, "valid id"},
		{"measure uid=0x10", 1, 9, ErrSyntax, "valid id"},
		{"measure uid=0 euid=0", 1, 15, ErrSyntax, "duplicate uid"},
		{"measure func=FILE_CHECK func=BPRM_CHECK", 1, 25, ErrSyntax, "duplicate func"},
		{"measure appraise", 1, 9, ErrSyntax, "second action"},
		{"func=FILE_CHECK", 1, 1, ErrSyntax, "no action"},
		{"measure fowner!=0", 1, 9, ErrSyntax, "unknown token"},
		{"measure func<FILE_CHECK", 1, 9, ErrSyntax, "unknown token"},
		{"dont_audit", 1, 1, ErrSyntax, "unknown token"},
		{"measure keyrings=.ima", 1, 9, ErrUnsupported, "KEY_CHECK"},
	}
	for _, tt := range tests {
		_, err := Parse("f.policy", []byte(tt.in))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error = %v, want *SyntaxError", tt.in, err)
			continue
		}
		if se.Line != tt.line || se.Col != tt.col || !errors.Is(err, tt.err) || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("Parse(%q) = %d:%d %q (%v), want %d:%d %q (%v)", tt.in, se.Line, se.Col, se.Msg, se.Err, tt.line, tt.col, tt.msg, tt.err)
		}
		if !strings.HasPrefix(err.Error(), "f.policy:") {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

func TestDecide(t *testing.T) {
	pol := `dont_measure fsmagic=0x9fa0
measure func=FILE_CHECK
measure func=BPRM_CHECK pcr=11
appraise func=BPRM_CHECK appraise_type=imasig
dont_appraise fowner>999
appraise fowner<1000 mask=^MAY_READ
audit func=BPRM_CHECK euid=0
`
	p := mustParse(t, pol)
	tests := []struct {
		name string
		s    Subject
		want Decision
	}{
		{"proc file: dont_measure wins over later measure",
			Subject{Func: FileCheck, Mask: MayRead, FSMagic: 0x9fa0, FOwner: 0},
			Decision{Appraise: true, MeasureRule: 0, AppraiseRule: 5, AuditRule: -1}},
		{"open on ext4",
			Subject{Func: FileCheck, Mask: MayRead, FSMagic: 0xef53, FOwner: 1000},
			Decision{Measure: true, MeasureRule: 1, AppraiseRule: 4, AuditRule: -1}},
		{"exec by root: signature, pcr 11, audit",
			Subject{Func: BprmCheck, Mask: MayExec, FSMagic: 0xef53, EUID: 0},
			Decision{Measure: true, Appraise: true, SigRequired: true, Audit: true, PCR: 11, HasPCR: true, MeasureRule: 2, AppraiseRule: 3, AuditRule: 6}},
		{"exec by user: no audit",
			Subject{Func: BprmCheck, Mask: MayExec, EUID: 1000, UID: 1000, SUID: 1000},
			Decision{Measure: true, Appraise: true, SigRequired: true, PCR: 11, HasPCR: true, MeasureRule: 2, AppraiseRule: 3, AuditRule: -1}},
		{"exec by user with CAP_SETUID and suid 0: euid matches saved uid",
			Subject{Func: BprmCheck, Mask: MayExec, EUID: 1000, UID: 1000, SUID: 0, CapSetuid: true},
			Decision{Measure: true, Appraise: true, SigRequired: true, Audit: true, PCR: 11, HasPCR: true, MeasureRule: 2, AppraiseRule: 3, AuditRule: 6}},
		{"mmap: mask without ^ must be equal; with ^ contained",
			Subject{Func: MmapCheck, Mask: MayExec | MayRead},
			Decision{Appraise: true, MeasureRule: -1, AppraiseRule: 5, AuditRule: -1}},
		{"mmap exec only: nothing",
			Subject{Func: MmapCheck, Mask: MayExec},
			Decision{MeasureRule: -1, AppraiseRule: -1, AuditRule: -1}},
	}
	for _, tt := range tests {
		if got := p.Decide(tt.s); got != tt.want {
			t.Errorf("%s: Decide = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if !p.SubjectDependent() {
		t.Error("SubjectDependent = false for a policy with euid=0")
	}
	if mustParse(t, "appraise fowner=0\nmeasure func=BPRM_CHECK").SubjectDependent() {
		t.Error("SubjectDependent = true for a policy without task ids")
	}
}

func TestMaskEquality(t *testing.T) {
	p := mustParse(t, "measure mask=MAY_READ\n")
	if p.Decide(Subject{Mask: MayRead | MayWrite}).Measure {
		t.Error("mask=MAY_READ matched MAY_READ|MAY_WRITE")
	}
	if !p.Decide(Subject{Mask: MayRead}).Measure {
		t.Error("mask=MAY_READ did not match MAY_READ")
	}
}

func TestBuiltins(t *testing.T) {
	tcb, err := Builtin("tcb")
	if err != nil {
		t.Fatal(err)
	}
	at, err := Builtin("appraise_tcb")
	if err != nil {
		t.Fatal(err)
	}
	both, err := Builtin("appraise_tcb|tcb")
	if err != nil {
		t.Fatal(err)
	}
	if len(both.Rules) != len(tcb.Rules)+len(at.Rules) || both.String() != tcb.String()+at.String() {
		t.Errorf("tcb|appraise_tcb is not tcb followed by appraise_tcb")
	}
	const ext4, tmpfs = 0xef53, 0x01021994
	tests := []struct {
		p                 *Policy
		s                 Subject
		measure, appraise bool
	}{
		{tcb, Subject{Func: BprmCheck, Mask: MayExec, FSMagic: ext4, EUID: 1000, UID: 1000}, true, false},
		{tcb, Subject{Func: MmapCheck, Mask: MayExec, FSMagic: tmpfs}, true, false},
		{tcb, Subject{Func: FileCheck, Mask: MayRead, FSMagic: tmpfs}, false, false},
		{tcb, Subject{Func: FileCheck, Mask: MayRead, FSMagic: ext4, EUID: 0, UID: 1000}, true, false},
		{tcb, Subject{Func: FileCheck, Mask: MayRead, FSMagic: ext4, EUID: 1000, UID: 1000}, false, false},
		{tcb, Subject{Func: FileCheck, Mask: MayRead, FSMagic: 0x9fa0}, false, false},
		{at, Subject{Func: FileCheck, Mask: MayRead, FSMagic: ext4, FOwner: 0}, false, true},
		{at, Subject{Func: FileCheck, Mask: MayRead, FSMagic: ext4, FOwner: 1000}, false, false},
		{at, Subject{Func: BprmCheck, Mask: MayExec, FSMagic: tmpfs, FOwner: 0}, false, false},
		{both, Subject{Func: BprmCheck, Mask: MayExec, FSMagic: ext4, FOwner: 0, EUID: 5}, true, true},
	}
	for i, tt := range tests {
		d := tt.p.Decide(tt.s)
		if d.Measure != tt.measure || d.Appraise != tt.appraise {
			t.Errorf("%d: %s: Decide(%+v) = measure %v appraise %v, want %v %v", i, tt.p.Source, tt.s, d.Measure, d.Appraise, tt.measure, tt.appraise)
		}
	}
	for _, bad := range []string{"", "tcb|", "secure_boot", "tcb|critical_data"} {
		if IsBuiltin(bad) {
			t.Errorf("IsBuiltin(%q) = true", bad)
		}
		if _, err := Builtin(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("Builtin(%q) error = %v, want ErrSyntax", bad, err)
		}
	}
}

const manglingSeed = `# intactd test policy
dont_measure fsmagic=0x9fa0
measure func=BPRM_CHECK mask=MAY_EXEC pcr=11
appraise func=BPRM_CHECK appraise_type=imasig
appraise func=FILE_CHECK fowner=0 fsuuid=6a1b8c3d-0000-4000-8000-00000000abcd
audit func=MMAP_CHECK euid<1000 fgroup>5
`

// TestMangling changes every byte of a valid policy to a few values and
// truncates it at every length: each result either parses to a policy whose
// normalized form is stable, or fails with a SyntaxError on an existing
// line. Nothing panics.
func TestMangling(t *testing.T) {
	check := func(text string) {
		p, err := Parse("m", []byte(text))
		if err != nil {
			var se *SyntaxError
			lines := strings.Count(text, "\n") + 1
			if !errors.As(err, &se) || se.Line < 1 || se.Line > lines || se.Col < 1 {
				t.Fatalf("Parse(%q): bad error %v", text, err)
			}
			return
		}
		again, err := Parse("m2", []byte(p.String()))
		if err != nil || again.String() != p.String() {
			t.Fatalf("normalized form of %q does not re-parse: %v", text, err)
		}
	}
	for i := range len(manglingSeed) {
		check(manglingSeed[:i])
		for _, c := range []byte{' ', '#', '=', '<', '>', '^', 'x', '0', '\n', 0, 0xff} {
			b := []byte(manglingSeed)
			b[i] = c
			check(string(b))
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(manglingSeed))
	for _, n := range BuiltinNames() {
		f.Add([]byte(builtins[n]))
	}
	f.Add([]byte("measure uid<5 euid>3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse("fuzz", b)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			return
		}
		again, err := Parse("fuzz2", []byte(p.String()))
		if err != nil || again.String() != p.String() {
			t.Fatalf("normalized form %q does not re-parse: %v", p, err)
		}
		p.Decide(Subject{Func: BprmCheck, Mask: MayExec})
	})
}

func TestPCRsAndNeeds(t *testing.T) {
	p := mustParse(t, "measure pcr=12\nmeasure func=BPRM_CHECK pcr=12\nmeasure pcr=13\naudit\n")
	if got := p.PCRs(); len(got) != 2 || got[0] != 12 || got[1] != 13 {
		t.Errorf("PCRs = %v, want [12 13]", got)
	}
	if m, a, au := p.Needs(); !m || a || !au {
		t.Errorf("Needs = %v %v %v, want true false true", m, a, au)
	}
}
