// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"crypto"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/tpm"
)

// MeasureTPM is what measuring needs of a TPM (*tpm.TPM).
type MeasureTPM interface {
	mlog.TPM
	Banks() ([]tpm.Bank, error)
}

// Measurer appends measurements to intact's list as intactd does: the
// first record of a boot is a boot_aggregate over the SHA-256 PCRs 0-9
// (as the kernel's IMA list starts), then one ima-ng record per measured
// file.
type Measurer struct {
	a *mlog.Appender
}

// OpenMeasurer opens the list at path for appending to pcr, starting it
// with a boot_aggregate if it is empty.
func OpenMeasurer(t MeasureTPM, path string, pcr int) (*Measurer, error) {
	banks, err := t.Banks()
	if err != nil {
		return nil, err
	}
	var hs []crypto.Hash
	for _, b := range banks {
		hs = append(hs, b.Hash)
	}
	a, err := mlog.OpenAppender(path, t, mlog.AppendOptions{PCR: pcr, Banks: hs})
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		a.Close()
		return nil, err
	}
	if fi.Size() == 0 {
		vals, err := t.ReadPCRs(crypto.SHA256, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
		if err != nil {
			a.Close()
			return nil, err
		}
		ba, err := mlog.BootAggregate(digest.SHA256, vals)
		if err != nil {
			a.Close()
			return nil, err
		}
		if _, err := a.Append(mlog.TemplateIMANG, mlog.FileMeasurement{Algo: digest.SHA256, Digest: ba, Path: mlog.BootAggregateName}); err != nil {
			a.Close()
			return nil, err
		}
	}
	return &Measurer{a: a}, nil
}

// MeasureFile appends an ima-ng record of the file's SHA-256 and extends
// it into the PCR.
func (m *Measurer) MeasureFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	_, err = m.a.Append(mlog.TemplateIMANG, mlog.FileMeasurement{Algo: digest.SHA256, Digest: h.Sum(nil), Path: path})
	return err
}

// Close closes the list.
func (m *Measurer) Close() error { return m.a.Close() }
