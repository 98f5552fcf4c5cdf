// SPDX-License-Identifier: Apache-2.0

package mlog

import (
	"encoding/binary"
	"strings"
)

// fieldKind says how a template field is rendered in the ASCII list.
type fieldKind uint8

const (
	kindHex      fieldKind = iota // lower-case hex of the bytes
	kindString                    // NUL-terminated string, printed up to the NUL
	kindDigestNG                  // "<prefix>:" NUL digest, printed as prefix + hex
	kindUint                      // little/big-endian unsigned, printed in decimal
)

type fieldDef struct {
	kind fieldKind
	size int // for kindUint: 2 or 4 bytes (0 = as long as the data)
}

// fieldDefs are the kernel's template fields
// (security/integrity/ima/ima_template.c, supported_fields).
var fieldDefs = map[string]fieldDef{
	"d":            {kind: kindHex},
	"n":            {kind: kindString},
	"d-ng":         {kind: kindDigestNG},
	"d-ngv2":       {kind: kindDigestNG},
	"n-ng":         {kind: kindString},
	"sig":          {kind: kindHex},
	"buf":          {kind: kindHex},
	"d-modsig":     {kind: kindDigestNG},
	"modsig":       {kind: kindHex},
	"evmsig":       {kind: kindHex},
	"xattrnames":   {kind: kindString},
	"xattrlengths": {kind: kindHex},
	"xattrvalues":  {kind: kindHex},
	"iuid":         {kind: kindUint, size: 4},
	"igid":         {kind: kindUint, size: 4},
	"imode":        {kind: kindUint, size: 2},
}

// The kernel's built-in templates (ima_template.c, builtin_templates).
var (
	fieldsIMA       = []string{"d", "n"}
	fieldsIMANG     = []string{"d-ng", "n-ng"}
	fieldsIMASig    = []string{"d-ng", "n-ng", "sig"}
	fieldsIMANGv2   = []string{"d-ngv2", "n-ng"}
	fieldsIMASigv2  = []string{"d-ngv2", "n-ng", "sig"}
	fieldsIMABuf    = []string{"d-ng", "n-ng", "buf"}
	fieldsIMAModsig = []string{"d-ng", "n-ng", "sig", "d-modsig", "modsig"}
	fieldsEVMSig    = []string{"d-ng", "n-ng", "evmsig", "xattrnames", "xattrlengths", "xattrvalues", "iuid", "igid", "imode"}
)

// Template names.
const (
	TemplateIMA       = "ima"
	TemplateIMANG     = "ima-ng"
	TemplateIMASig    = "ima-sig"
	TemplateIMANGv2   = "ima-ngv2"
	TemplateIMASigv2  = "ima-sigv2"
	TemplateIMABuf    = "ima-buf"
	TemplateIMAModsig = "ima-modsig"
	TemplateEVMSig    = "evm-sig"
)

// maxTemplateFields is the kernel's limit on fields in a template
// (MAX_TEMPLATE_NAME_LEN / IMA_TEMPLATE_NUM_FIELDS_MAX).
const maxTemplateFields = 15

// templateFields returns the field ids of a template: a built-in one, or a
// custom format string ("d-ng|n-ng|buf") made only of known field ids. It
// returns nil for an unknown template, whose fields are kept raw.
func templateFields(name string) []string {
	switch name {
	case TemplateIMA:
		return fieldsIMA
	case TemplateIMANG:
		return fieldsIMANG
	case TemplateIMASig:
		return fieldsIMASig
	case TemplateIMANGv2:
		return fieldsIMANGv2
	case TemplateIMASigv2:
		return fieldsIMASigv2
	case TemplateIMABuf:
		return fieldsIMABuf
	case TemplateIMAModsig:
		return fieldsIMAModsig
	case TemplateEVMSig:
		return fieldsEVMSig
	}
	ids := strings.Split(name, "|")
	if len(ids) > maxTemplateFields {
		return nil
	}
	for _, id := range ids {
		if _, ok := fieldDefs[id]; !ok {
			return nil
		}
	}
	return ids
}

// KnownTemplate reports whether name is a built-in template or a custom
// format string of known fields, whose fields this package can interpret.
func KnownTemplate(name string) bool { return templateFields(name) != nil }

// byteOrder reads and appends integers: binary.LittleEndian or BigEndian.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}
