// SPDX-License-Identifier: Apache-2.0

package tpm

import "time"

// SetStartupTimeout shortens the swtpm startup timeout for a test.
func SetStartupTimeout(d time.Duration) (restore func()) {
	old := startupTimeout
	startupTimeout = d
	return func() { startupTimeout = old }
}
