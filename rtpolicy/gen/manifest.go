// SPDX-License-Identifier: Apache-2.0

package gen

import (
	"encoding/hex"

	"github.com/intactsec/intact/manifest"
	"github.com/intactsec/intact/rtpolicy"
)

// FromManifest lists the regular files of a verified manifest whose
// content it records, with their digests, as a runtime policy: the tree
// as it was when the manifest was signed, not as it is now. Paths are the
// manifest's roots joined with its entries, Strip removed (a manifest of
// an image mounted at /mnt/img). Files whose content the manifest does not
// record (rules with -content) are counted as problems, not listed.
func FromManifest(v *manifest.Verified, o Options) (rtpolicy.Policy, *rtpolicy.GenerateReport, error) {
	o.Algo = v.Algo
	p, _ := newGenerated(&o)
	rep := &rtpolicy.GenerateReport{}
	err := v.Entries(func(root string, e *manifest.Entry) error {
		if e.Type != manifest.TypeFile {
			return nil
		}
		path := root + e.Path
		if root == "/" {
			path = e.Path
		}
		if e.Has&manifest.AttrContent == 0 {
			rep.Problem(path, errNoContent)
			return nil
		}
		addResult(&p, fileResult{path: o.listedPath(path), digest: v.Algo.String() + ":" + hex.EncodeToString(e.Digest)}, rep)
		return nil
	})
	if err != nil {
		return rtpolicy.Policy{}, nil, err
	}
	c, err := rtpolicy.Canonical(p)
	return c, rep, err
}

type noContentError struct{}

func (noContentError) Error() string { return "the manifest does not record its content" }

var errNoContent error = noContentError{}
