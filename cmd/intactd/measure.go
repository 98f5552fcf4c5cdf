// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"path/filepath"

	"github.com/intactsec/intact/enforce"
	"github.com/intactsec/intact/mlog"
	"github.com/intactsec/intact/tpm"
)

// listMeasurer appends measurements to the binary measurement list in the
// state directory and extends them into the PCR (mlog.Measurer: a new
// list starts with its boot_aggregate and the boot id; each record is
// written and synced first, then extended).
type listMeasurer struct {
	app *mlog.Measurer
	tpm *tpm.TPM
}

// measurementList is the list's file name in the state directory.
const measurementList = "binary_runtime_measurements"

func openMeasurer(stateDir, spec string, pcr int) (*listMeasurer, error) {
	t, err := tpmOpener().Open(spec)
	if err != nil {
		return nil, err
	}
	app, err := mlog.OpenMeasurer(filepath.Join(stateDir, measurementList), t, mlog.MeasureOptions{PCR: pcr})
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("measurement list: %w", err)
	}
	return &listMeasurer{app: app, tpm: t}, nil
}

func (m *listMeasurer) Measure(x enforce.Measurement) error {
	if x.PCR != m.app.PCR() {
		return fmt.Errorf("pcr %d: intactd extends pcr %d only", x.PCR, m.app.PCR())
	}
	_, err := m.app.Append(x.Template, mlog.FileMeasurement{Algo: x.Algo, Digest: x.Digest, Path: x.Path, Sig: x.Sig, Violation: x.Violation != ""})
	return err
}

func (m *listMeasurer) Close() error {
	err := m.app.Close()
	if cerr := m.tpm.Close(); err == nil {
		err = cerr
	}
	return err
}
