// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/internal/xattr"
	"github.com/intactsec/intact/mlog"
)

const measureUsage = `
Usage: intact measure --log FILE [--tpm SPEC] [--pcr N] [--template ima-ng|ima-sig] [-a ALGO] PATH...

Measures files into an IMA-format measurement list and extends a TPM PCR
with each record, as the kernel's IMA does: the list is the kernel's binary
format (SHA-1 template digests), and each record extends the PCR in every
allocated bank with that bank's template digest. "intact log replay" and
evmctl ima_measurement verify it against the TPM.

The default PCR is 13, not the kernel IMA's 10 (see docs/measurement.md).
A new list starts as intactd's and the agent's do: a boot_aggregate over
the TPM's boot PCRs, then an ima-buf record "intact-boot" holding the
kernel's boot id. Each record is written and synced before the PCR is
extended; a list left one record ahead of the PCR by a crash is completed
the next time it is opened. A list from an earlier boot (another boot id,
or a PCR that was reset) is refused.

Template ima-sig records the file's security.ima if it holds a signature,
else a portable EVM signature from security.evm, else nothing (as the
kernel); ima-ng records the digest and the path.

Examples:
    intact measure --log /var/lib/intact/measurements --tpm /dev/tpmrm0 /usr/local/bin/tool
    intact log replay /var/lib/intact/measurements --tpm /dev/tpmrm0
`

func cmdMeasure(e *env, args []string) error {
	f := newFlags(e, "measure", measureUsage)
	logPath := f.String("log", "", "the measurement list to append to (created if missing)")
	spec := tpmFlag(f)
	pcr := f.Int("pcr", mlog.DefaultPCR, "the PCR to extend (1..23)")
	template := f.String("template", mlog.TemplateIMANG, "record template: ima-ng or ima-sig")
	algoName := f.String("a", "sha256", "file digest algorithm: sha256, sha384, sha512, sha1")
	paths, err := f.parse(args)
	if err != nil {
		return err
	}
	switch {
	case *logPath == "":
		return usageErrorf("measure", "--log FILE is required")
	case len(paths) == 0:
		return usageErrorf("measure", "no PATH given")
	case *template != mlog.TemplateIMANG && *template != mlog.TemplateIMASig:
		return usageErrorf("measure", "--template must be ima-ng or ima-sig")
	case *pcr < 1 || *pcr > 23:
		return usageErrorf("measure", "--pcr must be 1..23")
	}
	if *pcr == 10 {
		warnf(e, "pcr 10 is the kernel IMA's: if IMA is active, this list will not replay")
	}
	algo, err := fileHashAlgo("measure", *algoName)
	if err != nil {
		return err
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, unwrapPathError(err))
		}
		if !fi.Mode().IsRegular() {
			return usageErrorf("measure", "%s is not a regular file", p)
		}
	}
	t, err := openTPM(e, *spec)
	if err != nil {
		return err
	}
	defer t.Close()
	// A new list starts with its boot_aggregate and the kernel's random
	// id of this boot, so that a list from an earlier boot is refused.
	a, err := mlog.OpenMeasurer(*logPath, t, mlog.MeasureOptions{PCR: *pcr})
	if errors.Is(err, mlog.ErrDiverged) {
		return withHint(err, "start a new list (move this one away), or choose another --pcr")
	}
	if err != nil {
		return err
	}
	defer a.Close()
	for _, p := range paths {
		m, err := measureFile(p, algo, *template == mlog.TemplateIMASig)
		if err != nil {
			return err
		}
		r, err := a.Append(*template, m)
		if err != nil {
			return err
		}
		line, _ := r.AppendASCII(nil)
		e.stdout.Write(line)
	}
	return nil
}

// measureFile hashes a file and, for ima-sig, reads its signature.
func measureFile(path string, algo digest.Algo, withSig bool) (mlog.FileMeasurement, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return mlog.FileMeasurement{}, err
	}
	// Never block on a FIFO or a device, never take a terminal: a
	// regular file only.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return mlog.FileMeasurement{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return mlog.FileMeasurement{}, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return mlog.FileMeasurement{}, fmt.Errorf("%s: not a regular file", path)
	}
	d, err := digest.File(f, algo)
	if err != nil {
		return mlog.FileMeasurement{}, fmt.Errorf("%s: %w", path, err)
	}
	m := mlog.FileMeasurement{Algo: algo, Digest: d, Path: abs}
	if withSig {
		// The kernel's sig field: the whole security.ima if it is a
		// signature (0x03, 0x06), else a portable EVM signature (0x05) in
		// security.evm, else empty.
		for _, x := range []struct {
			name  string
			types []byte
		}{{xattr.IMA(false), []byte{0x03, 0x06}}, {xattr.EVM(false), []byte{0x05}}} {
			v, err := xattr.FGet(f, x.name)
			if errors.Is(err, xattr.ErrNotFound) {
				continue
			}
			if err != nil {
				return m, fmt.Errorf("%s: reading %s: %w", path, x.name, err)
			}
			if len(v) > 0 && bytes.IndexByte(x.types, v[0]) >= 0 {
				m.Sig = v
				break
			}
		}
	}
	return m, nil
}
