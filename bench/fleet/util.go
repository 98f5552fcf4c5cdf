// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"io"
	"runtime"
	"sync"
)

func numCPU() int { return runtime.NumCPU() }

// warnFilter passes on the verifier's log lines except level=INFO ones
// (one per agent state change: thousands at enrollment).
type warnFilter struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func newWarnFilter(w io.Writer) *warnFilter { return &warnFilter{w: w} }

func (f *warnFilter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.buf = append(f.buf, p...)
	for {
		i := bytes.IndexByte(f.buf, '\n')
		if i < 0 {
			break
		}
		line := f.buf[:i+1]
		if !bytes.Contains(line, []byte("level=INFO")) {
			f.w.Write(line)
		}
		f.buf = f.buf[i+1:]
	}
	return len(p), nil
}
