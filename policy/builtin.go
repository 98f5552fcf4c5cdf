// SPDX-License-Identifier: Apache-2.0

package policy

import (
	"fmt"
	"strings"
)

// Magic numbers of the pseudo file systems the built-in policies exclude.
const (
	magicProc       = "0x9fa0"
	magicSysfs      = "0x62656572"
	magicDebugfs    = "0x64626720"
	magicTmpfs      = "0x1021994"
	magicRamfs      = "0x858458f6"
	magicDevpts     = "0x1cd1"
	magicBinfmt     = "0x42494e4d"
	magicSecurityfs = "0x73636673"
	magicSelinux    = "0xf97cff8c"
	magicSmack      = "0x43415d53"
	magicCgroup     = "0x27e0eb"
	magicCgroup2    = "0x63677270"
	magicNsfs       = "0x6e736673"
	magicEfivarfs   = "0xde5e81e4"
)

// builtins are the kernel's ima_policy= policies, restricted to the hooks
// a userspace daemon sees: MODULE_CHECK, FIRMWARE_CHECK and POLICY_CHECK
// rules of the kernel's versions are left out.
var builtins = map[string]string{
	"tcb": `dont_measure fsmagic=` + magicProc + `
dont_measure fsmagic=` + magicSysfs + `
dont_measure fsmagic=` + magicDebugfs + `
dont_measure fsmagic=` + magicTmpfs + ` func=FILE_CHECK
dont_measure fsmagic=` + magicDevpts + `
dont_measure fsmagic=` + magicBinfmt + `
dont_measure fsmagic=` + magicSecurityfs + `
dont_measure fsmagic=` + magicSelinux + `
dont_measure fsmagic=` + magicSmack + `
dont_measure fsmagic=` + magicCgroup + `
dont_measure fsmagic=` + magicCgroup2 + `
dont_measure fsmagic=` + magicNsfs + `
dont_measure fsmagic=` + magicEfivarfs + `
measure func=MMAP_CHECK mask=MAY_EXEC
measure func=BPRM_CHECK mask=MAY_EXEC
measure func=FILE_CHECK mask=^MAY_READ euid=0
measure func=FILE_CHECK mask=^MAY_READ uid=0
`,
	"appraise_tcb": `dont_appraise fsmagic=` + magicProc + `
dont_appraise fsmagic=` + magicSysfs + `
dont_appraise fsmagic=` + magicDebugfs + `
dont_appraise fsmagic=` + magicTmpfs + `
dont_appraise fsmagic=` + magicRamfs + `
dont_appraise fsmagic=` + magicDevpts + `
dont_appraise fsmagic=` + magicBinfmt + `
dont_appraise fsmagic=` + magicSecurityfs + `
dont_appraise fsmagic=` + magicSelinux + `
dont_appraise fsmagic=` + magicSmack + `
dont_appraise fsmagic=` + magicNsfs + `
dont_appraise fsmagic=` + magicEfivarfs + `
dont_appraise fsmagic=` + magicCgroup + `
dont_appraise fsmagic=` + magicCgroup2 + `
appraise fowner=0
`,
}

// BuiltinNames lists the built-in policies.
func BuiltinNames() []string { return []string{"tcb", "appraise_tcb"} }

// IsBuiltin reports whether spec names built-in policies: one name or
// several joined by '|', as the kernel's ima_policy= ("tcb|appraise_tcb").
func IsBuiltin(spec string) bool {
	for _, n := range strings.Split(spec, "|") {
		if _, ok := builtins[n]; !ok {
			return false
		}
	}
	return spec != ""
}

// Builtin returns the built-in policies named by spec ("tcb",
// "appraise_tcb" or both joined by '|'), concatenated in that order.
func Builtin(spec string) (*Policy, error) {
	if !IsBuiltin(spec) {
		return nil, fmt.Errorf("%w: unknown built-in policy %q (have tcb, appraise_tcb)", ErrSyntax, spec)
	}
	var text strings.Builder
	seen := map[string]bool{}
	for _, n := range BuiltinNames() {
		for _, want := range strings.Split(spec, "|") {
			if want == n && !seen[n] {
				seen[n] = true
				text.WriteString(builtins[n])
			}
		}
	}
	return Parse(spec, []byte(text.String()))
}
