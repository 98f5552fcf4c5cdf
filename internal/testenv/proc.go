// SPDX-License-Identifier: Apache-2.0

package testenv

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BytesRead returns the bytes this process has read (read, pread, ...)
// as the kernel counts them (rchar in /proc/self/io): tests that promise
// a file is read once compare it before and after.
func BytesRead() (int64, error) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no rchar in /proc/self/io")
}

// CPUTime returns this process's user and system CPU time so far
// (getrusage), for benchmarks that report CPU per operation; 0 if it
// cannot be read.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
