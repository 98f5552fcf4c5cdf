// SPDX-License-Identifier: Apache-2.0

package digest

import (
	"crypto"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrUnsupported is wrapped by errors about a hash algorithm this program
// cannot compute (unknown to the kernel, or without a Go implementation).
var ErrUnsupported = errors.New("unsupported hash algorithm")

// bufSize is the read size: large enough that a read syscall costs little
// next to hashing it, small enough to stay in L2 cache.
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// File returns the digest of everything r yields (a file's content), with
// algo. An algorithm that cannot be computed is an error wrapping
// ErrUnsupported.
func File(r io.Reader, algo Algo) ([]byte, error) {
	ch, ok := algo.CryptoHash()
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, algo)
	}
	return sum(r, ch)
}

func sum(r io.Reader, ch crypto.Hash) ([]byte, error) {
	h := ch.New()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return h.Sum(nil), nil
		}
		if err != nil {
			return nil, err
		}
	}
}
