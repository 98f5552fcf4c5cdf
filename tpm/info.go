// SPDX-License-Identifier: Apache-2.0

package tpm

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-tpm/tpm2"
)

// Well-known handles of the endorsement key (TCG EK Credential Profile):
// the persistent EKs and the NV indexes of their certificates.
const (
	ekRSAHandle   = 0x81010001
	ekECCHandle   = 0x81010002
	ekRSACertNV   = 0x01c00002
	ekECCCertNV   = 0x01c0000a
	handleListMax = 256
)

// Info describes a TPM.
type Info struct {
	Spec            string // the spec it was opened with
	Manufacturer    string // TPM_PT_MANUFACTURER, e.g. "IBM", "INTC", "STM"
	VendorString    string // TPM_PT_VENDOR_STRING_1..4
	FirmwareVersion string // TPM_PT_FIRMWARE_VERSION_1 and _2, as major.minor.x.y
	SpecRevision    string // TPM_PT_REVISION, e.g. "1.64"
	Banks           []Bank // allocated PCR banks
	EKPersistent    bool   // an EK at 0x81010001 (RSA) or 0x81010002 (ECC)
	EKCertificate   bool   // an EK certificate at NV 0x01c00002 or 0x01c0000a
}

// Info reads the TPM's identity, its PCR banks and whether an endorsement
// key (or its certificate) is provisioned.
func (t *TPM) Info() (*Info, error) {
	const op = "read info"
	props, err := t.properties(tpm2.TPMPTFamilyIndicator, 0x30)
	if err != nil {
		return nil, wrap(op, err)
	}
	info := &Info{
		Spec:         t.spec,
		Manufacturer: strings.TrimSpace(fourCC(props[tpm2.TPMPTManufacturer])),
		SpecRevision: fmt.Sprintf("%d.%02d", props[tpm2.TPMPTRevision]/100, props[tpm2.TPMPTRevision]%100),
	}
	var vendor []string
	for p := tpm2.TPMPTVendorString1; p < tpm2.TPMPTVendorString1+4; p++ {
		vendor = append(vendor, fourCC(props[p]))
	}
	info.VendorString = strings.TrimSpace(strings.Join(vendor, ""))
	fw1, fw2 := props[tpm2.TPMPTFirmwareVersion1], props[tpm2.TPMPTFirmwareVersion1+1]
	info.FirmwareVersion = fmt.Sprintf("%d.%d.%d.%d", fw1>>16, fw1&0xffff, fw2>>16, fw2&0xffff)
	if info.Banks, err = t.Banks(); err != nil {
		return nil, err
	}
	persistent, err := t.handles(uint32(tpm2.TPMHTPersistent) << 24)
	if err != nil {
		return nil, wrap(op, err)
	}
	nv, err := t.handles(uint32(tpm2.TPMHTNVIndex) << 24)
	if err != nil {
		return nil, wrap(op, err)
	}
	info.EKPersistent = slices.Contains(persistent, ekRSAHandle) || slices.Contains(persistent, ekECCHandle)
	info.EKCertificate = slices.Contains(nv, ekRSACertNV) || slices.Contains(nv, ekECCCertNV)
	return info, nil
}

// properties reads count TPM properties from first on.
func (t *TPM) properties(first tpm2.TPMPT, count uint32) (map[tpm2.TPMPT]uint32, error) {
	out := map[tpm2.TPMPT]uint32{}
	for {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(first), PropertyCount: count}.Execute(t.tr)
		if err != nil {
			return nil, err
		}
		props, err := rsp.CapabilityData.Data.TPMProperties()
		if err != nil {
			return nil, err
		}
		for _, p := range props.TPMProperty {
			out[p.Property] = p.Value
		}
		n := len(props.TPMProperty)
		if !rsp.MoreData || n == 0 || uint32(len(out)) >= count {
			return out, nil
		}
		first = props.TPMProperty[n-1].Property + 1
	}
}

// handles lists the handles of one type (the top byte of from).
func (t *TPM) handles(from uint32) ([]uint32, error) {
	var out []uint32
	for {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: from, PropertyCount: handleListMax}.Execute(t.tr)
		if err != nil {
			return nil, err
		}
		hs, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			return nil, err
		}
		for _, h := range hs.Handle {
			out = append(out, uint32(h))
		}
		if !rsp.MoreData || len(hs.Handle) == 0 || len(out) > 4096 {
			return out, nil
		}
		from = uint32(hs.Handle[len(hs.Handle)-1]) + 1
	}
}

// fourCC renders a property holding up to four ASCII characters.
func fourCC(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	s := strings.TrimRight(string(b[:]), "\x00")
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return fmt.Sprintf("0x%08x", v)
		}
	}
	return s
}
