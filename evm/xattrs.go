// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"fmt"
	"slices"
	"strings"
)

// The names of the xattrs EVM protects (include/uapi/linux/xattr.h).
const (
	XattrSELinux          = "security.selinux"
	XattrSMACK64          = "security.SMACK64"
	XattrSMACK64Exec      = "security.SMACK64EXEC"
	XattrSMACK64Transmute = "security.SMACK64TRANSMUTE"
	XattrSMACK64MMAP      = "security.SMACK64MMAP"
	XattrAppArmor         = "security.apparmor"
	XattrIMA              = "security.ima"
	XattrCapability       = "security.capability"
	XattrEVM              = "security.evm"
)

// kernelOrder is the kernel's built-in list (evm_config_default_xattrnames)
// in its fixed order. Names added at run time through evm_xattrs follow it.
var kernelOrder = []string{
	XattrSELinux,
	XattrSMACK64,
	XattrSMACK64Exec,
	XattrSMACK64Transmute,
	XattrSMACK64MMAP,
	XattrAppArmor,
	XattrIMA,
	XattrCapability,
}

// extraSmack are the entries the kernel enables only with
// CONFIG_EVM_EXTRA_SMACK_XATTRS (evmctl: --smack).
var extraSmack = []string{XattrSMACK64Exec, XattrSMACK64Transmute, XattrSMACK64MMAP}

// Config says which protected xattrs the kernel that checks the files has
// enabled. The zero value is evmctl's default and a typical distribution
// kernel (SELinux, Smack, AppArmor and IMA appraisal compiled in, no extra
// Smack xattrs): selinux, SMACK64, apparmor, ima and capability enabled.
type Config struct {
	// Smack enables SMACK64EXEC, SMACK64TRANSMUTE and SMACK64MMAP
	// (CONFIG_EVM_EXTRA_SMACK_XATTRS; evmctl --smack).
	Smack bool
	// Disabled lists entries of the built-in list that the kernel has not
	// enabled (an LSM not compiled in). HMACs and full signatures skip
	// them; portable signatures still include them, as the kernel does.
	Disabled []string
	// Extra lists names added at run time through
	// /sys/kernel/security/integrity/evm/evm_xattrs, in the order written.
	// They must start with "security.".
	Extra []string
}

// Validate checks the names in c.
func (c Config) Validate() error {
	for _, n := range c.Disabled {
		if !slices.Contains(kernelOrder, n) {
			return fmt.Errorf("evm: %q is not in the kernel's protected xattr list", n)
		}
	}
	for _, n := range c.Extra {
		if !strings.HasPrefix(n, "security.") || len(n) == len("security.") {
			return fmt.Errorf("evm: extra protected xattr %q does not start with %q", n, "security.")
		}
		if slices.Contains(kernelOrder, n) {
			return fmt.Errorf("evm: extra protected xattr %q is already in the kernel's list", n)
		}
	}
	return nil
}

// Protected returns the names whose values a security.evm value of type t
// covers, in the order they are hashed: the enabled entries for HMACs and
// full signatures, every entry for portable signatures.
func (c Config) Protected(portable bool) []string {
	var out []string
	for _, n := range kernelOrder {
		if portable || c.enabled(n) {
			out = append(out, n)
		}
	}
	return append(out, c.Extra...)
}

// Names returns every name any type may cover: what a caller must read.
func (c Config) Names() []string { return c.Protected(true) }

func (c Config) enabled(name string) bool {
	if slices.Contains(c.Disabled, name) {
		return false
	}
	if slices.Contains(extraSmack, name) {
		return c.Smack
	}
	return true
}
