// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/mlog"
)

// MeasureTPM is what measuring needs of a TPM (*tpm.TPM).
type MeasureTPM = mlog.TPM

// Measurer appends measurements to intact's list with mlog.Measurer, as
// intactd and "intact measure" do: a new list starts with its
// boot_aggregate and the kernel's boot id, then one ima-ng record per
// measured file.
type Measurer struct {
	a *mlog.Measurer
}

// OpenMeasurer opens the list at path for appending to pcr (starting it
// if it is empty).
func OpenMeasurer(t MeasureTPM, path string, pcr int) (*Measurer, error) {
	a, err := mlog.OpenMeasurer(path, t, mlog.MeasureOptions{PCR: pcr})
	if err != nil {
		return nil, err
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
