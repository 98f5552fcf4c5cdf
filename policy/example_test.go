// SPDX-License-Identifier: Apache-2.0

package policy_test

import (
	"errors"
	"fmt"

	"github.com/intactsec/intact/policy"
)

func ExamplePolicy_Decide() {
	p, err := policy.Parse("example.policy", []byte(`
dont_appraise fsmagic=0x9fa0          # proc
appraise func=BPRM_CHECK appraise_type=imasig
measure func=BPRM_CHECK pcr=11
`))
	if err != nil {
		panic(err)
	}
	d := p.Decide(policy.Subject{Func: policy.BprmCheck, Mask: policy.MayExec, FSMagic: 0xef53})
	fmt.Println(d.Appraise, d.SigRequired, d.Measure, d.PCR)
	fmt.Print(p)
	// Output:
	// true true true 11
	// dont_appraise fsmagic=0x9fa0
	// appraise func=BPRM_CHECK appraise_type=imasig
	// measure func=BPRM_CHECK pcr=11
}

func ExampleParse_error() {
	_, err := policy.Parse("example.policy", []byte("measure func=MODULE_CHECK\n"))
	fmt.Println(err)
	fmt.Println(errors.Is(err, policy.ErrUnsupported))
	// Output:
	// example.policy:1:9: func=MODULE_CHECK is a kernel-only hook that fanotify cannot see ("func=MODULE_CHECK")
	// true
}
