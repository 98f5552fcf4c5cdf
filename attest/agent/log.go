// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/intactsec/intact/attest"
	"github.com/intactsec/intact/mlog"
)

// Log is a measurement list the agent serves from a record offset.
type Log interface {
	// Read returns the records from start on, at most max bytes of them.
	// A start beyond the list gives an empty chunk; a single record
	// larger than max is an error.
	Read(start int64, max int) (*attest.LogChunk, error)
	// Source is attest.LogIntact or attest.LogIMA.
	Source() string
}

// FileLog serves a binary measurement list file (SHA-1 template
// digests): intact's own list, or the kernel's
// /sys/kernel/security/ima/binary_runtime_measurements. The list only
// grows; FileLog indexes each record's byte offset once, so a read from
// any offset costs only the bytes it returns.
type FileLog struct {
	path   string
	source string

	mu      sync.Mutex
	offsets []int64 // offsets[i]: byte offset of record i; last: end of the last whole record
}

// NewFileLog serves the list at path as source.
func NewFileLog(path, source string) *FileLog {
	return &FileLog{path: path, source: source, offsets: []int64{0}}
}

// Source returns the list's source.
func (l *FileLog) Source() string { return l.source }

// ErrShrunk: the list file is shorter than records already served (it was
// replaced: a new boot, or tampering).
var ErrShrunk = errors.New("measurement list shrank")

// refresh indexes the records appended since the last call.
func (l *FileLog) refresh(f *os.File) error {
	end := l.offsets[len(l.offsets)-1]
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() && fi.Size() < end {
		l.offsets = []int64{0} // replaced by a shorter list: start over
		end = 0
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return err
	}
	tail, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if len(tail) == 0 {
		return nil
	}
	list, err := mlog.ParseBinary(tail, mlog.Options{})
	var pe *mlog.ParseError
	if errors.As(err, &pe) {
		// A record being written (mlog.Measurer writes and syncs a record
		// before extending its PCR, so no quote covers it yet), or a
		// corrupt list: serve what is indexed; a corrupt list never
		// replays to the quoted PCR and the verifier says so.
		return nil
	}
	if err != nil {
		return err
	}
	recs := list.UnverifiedRecords()
	for i := range recs {
		end += int64(len(recs[i].AppendBinary(nil)))
		l.offsets = append(l.offsets, end)
	}
	return nil
}

// Read implements Log.
func (l *FileLog) Read(start int64, max int) (*attest.LogChunk, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := l.refresh(f); err != nil {
		return nil, err
	}
	count := int64(len(l.offsets) - 1)
	c := &attest.LogChunk{Source: l.source, Start: start}
	if start >= count {
		return c, nil
	}
	from := l.offsets[start]
	j, fits := ChunkEnd(l.offsets, start, max)
	size := l.offsets[j] - from
	if !fits {
		return nil, fmt.Errorf("%s: record %d alone is %d bytes (more than %d)", l.path, start, size, max)
	}
	c.Data = make([]byte, size)
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(f, c.Data); err != nil {
		return nil, err
	}
	c.Count = j - start
	c.More = j < count
	return c, nil
}

// ChunkEnd is where a chunk of a list that starts at record start ends
// (the chunk holds records start to end-1): as many whole records as fit
// in max bytes, at least one. offsets are the records' byte offsets in
// the list (offsets[i] where record i starts, the last where the list
// ends), and start < len(offsets)-1. fits is false when the record at
// start alone is larger than max.
func ChunkEnd[T int | int64](offsets []T, start int64, max int) (end int64, fits bool) {
	count := int64(len(offsets) - 1)
	from := offsets[start]
	end = start + 1
	for end < count && int64(offsets[end+1]-from) <= int64(max) {
		end++
	}
	return end, int64(offsets[end]-from) <= int64(max)
}
