package uploader

import (
	"context"
	"hash"
	"io"
)

// hashReader hashes what the upload reads, in the same pass. It reveals the
// remaining size so pkg/sftp pipelines the writes instead of sending one
// packet per round trip.
type hashReader struct {
	ctx      context.Context
	r        io.Reader
	h        hash.Hash
	remain   int64
	done     int64
	progress func(int64)
	err      error // first error from the source or ctx, not from the writer
}

var _ interface{ Size() int64 } = (*hashReader)(nil)

// Size lets sftp.File.ReadFrom choose concurrent writes.
func (r *hashReader) Size() int64 { return r.remain }

func (r *hashReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return 0, err
	}
	n, err := r.r.Read(p)
	if n > 0 {
		r.h.Write(p[:n])
		r.done += int64(n)
		r.remain -= int64(n)
		if r.progress != nil {
			r.progress(r.done)
		}
	}
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
