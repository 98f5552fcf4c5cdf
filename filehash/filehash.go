// SPDX-License-Identifier: Apache-2.0

// Package filehash computes file content digests, the input of every label.
package filehash

import (
	"crypto"
	"fmt"
	"io"
	"sync"

	"github.com/intactsec/intact/label"
)

// bufSize is the read size: large enough that a read syscall costs little
// next to hashing it, small enough to stay in L2 cache.
const bufSize = 256 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// Digest returns the digest of everything r yields, with algo.
func Digest(r io.Reader, algo label.HashAlgo) ([]byte, error) {
	ch, ok := algo.CryptoHash()
	if !ok {
		return nil, fmt.Errorf("%w: hash algorithm %s", label.ErrUnsupported, algo)
	}
	return digest(r, ch)
}

func digest(r io.Reader, ch crypto.Hash) ([]byte, error) {
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
