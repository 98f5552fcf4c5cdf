package enforce

import (
	"errors"
	"strings"
	"testing"

	"github.com/intactsec/intact/policy"
)

func TestCheckActs(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		why        string // "" = can act
	}{
		{"empty", "", "no rules"},
		{"comments", "# nothing\n\n   # still nothing\n", "no rules"},
		{"dont_appraise", "dont_appraise fsmagic=0x9fa0\ndont_appraise\n", "acts on nothing by itself"},
		{"write mask", "appraise func=FILE_CHECK mask=MAY_WRITE\nmeasure mask=MAY_APPEND\n", "a write (MAY_WRITE, MAY_APPEND) is never seen"},
		{"shadowed", "dont_appraise\nappraise func=BPRM_CHECK\n", "always decided first by line 1"},
		{"shadowed per hook", "dont_measure func=BPRM_CHECK\ndont_measure func=FILE_CHECK\ndont_measure func=MMAP_CHECK\nmeasure\n", "always decided first"},
		{"appraise exec", "appraise func=BPRM_CHECK appraise_type=imasig\n", ""},
		{"conditional dont first", "dont_appraise fsmagic=0x9fa0\nappraise func=BPRM_CHECK\n", ""},
		{"read mask", "measure func=FILE_CHECK mask=^MAY_READ\n", ""},
		{"audit", "audit func=MMAP_CHECK mask=MAY_EXEC\n", ""},
		{"other class does not shadow", "dont_measure\nappraise\n", ""},
		{"tcb", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *policy.Policy
			var err error
			if tc.name == "tcb" {
				p, err = policy.Builtin("tcb|appraise_tcb")
			} else {
				p, err = policy.Parse("pol", []byte(tc.text))
			}
			if err != nil {
				t.Fatal(err)
			}
			err = CheckActs(p)
			if tc.why == "" {
				if err != nil {
					t.Fatalf("CheckActs: %v, want nil", err)
				}
				return
			}
			var ie *InertPolicyError
			if !errors.Is(err, ErrInertPolicy) || !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("CheckActs = %v, want an inert-policy error saying %q", err, tc.why)
			}
		})
	}
}
