// SPDX-License-Identifier: Apache-2.0

package digest

import (
	"fmt"
	"hash"
	"io"
)

// Sum is one digest with its algorithm.
type Sum struct {
	Algo  Algo
	Bytes []byte
}

// Find returns the digest with algo in sums, nil if there is none.
func Find(sums []Sum, algo Algo) []byte {
	for _, s := range sums {
		if s.Algo == algo {
			return s.Bytes
		}
	}
	return nil
}

// FileSums returns the digests of everything r yields (a file's content)
// with each of algos, in one read: a caller that needs the content under
// two algorithms (a label's and a measurement's) does not read it twice.
// The i-th sum is algos[i]'s. An algorithm that cannot be computed is an
// error wrapping ErrUnsupported.
func FileSums(r io.Reader, algos ...Algo) ([]Sum, error) {
	hs := make([]hash.Hash, len(algos))
	for i, algo := range algos {
		ch, ok := algo.CryptoHash()
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrUnsupported, algo)
		}
		hs[i] = ch.New()
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := r.Read(buf)
		for _, h := range hs {
			h.Write(buf[:n])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]Sum, len(hs))
	for i, h := range hs {
		out[i] = Sum{algos[i], h.Sum(nil)}
	}
	return out, nil
}
