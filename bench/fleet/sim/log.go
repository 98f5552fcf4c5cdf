// SPDX-License-Identifier: Apache-2.0

package sim

import (
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/attest/agent"
	"github.com/intactsec/intact/digest"
	"github.com/intactsec/intact/mlog"
)

// LogPCR is the PCR the simulated list extends (intact's list).
const LogPCR = mlog.DefaultPCR

// MemLog is a growing measurement list in memory (binary format, SHA-1
// template digests) whose records a SoftTPM extends into LogPCR as they
// are appended, as intactd's mlog.Measurer does. It implements
// attest/agent.Log.
type MemLog struct {
	tpm *SoftTPM

	mu      sync.Mutex
	data    []byte
	offsets []int // offsets[i]: byte offset of record i; last: the end
}

// NewMemLog starts a list for t with a boot_aggregate over t's SHA-256
// PCRs 0-9, as intact's list starts.
func NewMemLog(t *SoftTPM) (*MemLog, error) {
	l := &MemLog{tpm: t, offsets: []int{0}}
	vals, err := t.PCRs([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	if err != nil {
		return nil, err
	}
	ba, err := mlog.BootAggregate(digest.SHA256, vals)
	if err != nil {
		return nil, err
	}
	if err := l.Append(mlog.BootAggregateName, ba); err != nil {
		return nil, err
	}
	return l, nil
}

// Source implements attest/agent.Log.
func (l *MemLog) Source() string { return attest.LogIntact }

// Len returns the number of records.
func (l *MemLog) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.offsets) - 1
}

// Append adds an ima-ng record of a file's SHA-256 digest and extends
// its SHA-256 template digest into the TPM's LogPCR. Record and extend
// happen under the list's lock, so a list read after a quote always
// reaches the quoted PCR.
func (l *MemLog) Append(path string, sum []byte) error {
	r, err := mlog.NewRecord(LogPCR, mlog.TemplateIMANG, mlog.FileMeasurement{Algo: digest.SHA256, Digest: sum, Path: path}, digest.SHA1)
	if err != nil {
		return err
	}
	ext, err := r.ExtendDigest(digest.SHA256)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.data = r.AppendBinary(l.data)
	l.offsets = append(l.offsets, len(l.data))
	return l.tpm.Extend(LogPCR, ext)
}

// Read implements attest/agent.Log: the records from start on, at most
// max bytes.
func (l *MemLog) Read(start int64, max int) (*attest.LogChunk, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	count := int64(len(l.offsets) - 1)
	c := &attest.LogChunk{Source: attest.LogIntact, Start: start}
	if start >= count {
		return c, nil
	}
	from := l.offsets[start]
	j, fits := agent.ChunkEnd(l.offsets, start, max)
	if !fits {
		return nil, fmt.Errorf("sim: record %d alone is more than %d bytes", start, max)
	}
	c.Data = append([]byte(nil), l.data[from:l.offsets[j]]...)
	c.Count = j - start
	c.More = j < count
	return c, nil
}

// Files are the programs simulated agents measure: NumFiles paths with
// fixed contents, all in Policy.
const NumFiles = 64

// File returns the path and SHA-256 digest of simulated file i.
func File(i int) (path string, digest []byte) {
	i %= NumFiles
	sum := sha256.Sum256(fmt.Appendf(nil, "intact fleet simulated program %d", i))
	return fmt.Sprintf("/usr/lib/intact-fleet/bin/prog-%02d", i), sum[:]
}
