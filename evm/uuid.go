// SPDX-License-Identifier: Apache-2.0

package evm

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// ParseUUID parses a canonical UUID string (8-4-4-4-12 hex digits) into the
// 16 bytes in string order, the order of ext4's and XFS's s_uuid.
func ParseUUID(s string) ([]byte, error) {
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 ||
		len(parts[3]) != 4 || len(parts[4]) != 12 {
		return nil, fmt.Errorf("evm: %q is not a uuid (want 8-4-4-4-12 hex digits)", s)
	}
	b, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return nil, fmt.Errorf("evm: %q is not a uuid (want 8-4-4-4-12 hex digits)", s)
	}
	return b, nil
}

// FormatUUID formats 16 bytes as a canonical UUID string.
func FormatUUID(b []byte) string {
	if len(b) != UUIDSize {
		return hex.EncodeToString(b)
	}
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
