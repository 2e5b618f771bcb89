package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// A delivered file written again with the same bytes — touched, copied over by a sync,
// rendered again identically — is the file already delivered (SPEC.md, Transfer: a file
// whose sha256 was already delivered to the same request is never sent twice). It was held
// already_delivered, which turned its request from delivered to held for a coordinator to
// look at, or, in a redelivery, it was sent again. Now its new version is hashed once, off the
// loop, before anything else is decided about it; the same content keeps it delivered, quietly.
// Another content goes on as before. What the last delivered version was is kept in memory:
// after a restart such a file is judged as a changed one.

// deliveredContent is a file's last delivered version, kept once the file changed.
type deliveredContent struct {
	sha256 string
	size   int64
}

// contentCheck is the hash of one version (key) of a file that was delivered, against the
// delivered one.
type contentCheck struct {
	key     string
	pending bool
	same    bool
}

func identityKey(fs *fileState) string {
	return fmt.Sprintf("%d|%d|%d|%d", fs.rec.Size, fs.rec.ModTime.UnixNano(), fs.rec.Inode, fs.dev)
}

// checkSameContent starts hashing a judged version of a file that was delivered before, when
// it has the delivered version's size and nothing holds it already.
func (e *Engine) checkSameContent(fs *fileState) {
	if fs.more == nil || fs.more.was == nil || fs.rec.State != Ready {
		return
	}
	was := fs.more.was
	if fs.rec.Size != was.size {
		return
	}
	key := identityKey(fs)
	if c := fs.x().same; c != nil && c.key == key {
		return // known, or under way
	}
	c := &contentCheck{key: key, pending: true}
	fs.setMore().same = c
	open, p, want := e.sourceOpener(fs), fs.rec.Path, was.sha256
	e.background(func(ctx context.Context) func() {
		got, err := sha256Of(ctx, open)
		if err != nil {
			e.log.Warn("could not compare a delivered file written again with what was delivered; it is judged as changed", "file", p, "err", err)
		}
		return func() { e.sameChecked(p, c, err == nil && got == want) }
	})
}

// sameChecked records a content check, on the loop, and looks at the file's request again.
func (e *Engine) sameChecked(p string, c *contentCheck, same bool) {
	fs := e.files[p]
	if fs == nil || fs.x().same != c {
		return // gone, or changed since: a newer check decides
	}
	c.pending, c.same = false, same
	ctx := e.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	e.refreshOwner(ctx, fs)
}

// sameContentPending reports whether fs waits for its content check: nothing is decided
// about it meanwhile.
func sameContentPending(fs *fileState) bool {
	if fs.more == nil || fs.more.same == nil { // most files, on every refresh: no copy of more
		return false
	}
	c := fs.more.same
	return fs.rec.State == Ready && c.pending && c.key == identityKey(fs)
}

// applySameContent keeps delivered the ready files found to hold the content delivered
// before, and reports whether a check is still under way: then nothing of the request starts.
func (e *Engine) applySameContent(r *reqState, files []*fileState) (pending bool) {
	for _, fs := range files {
		if fs.more == nil || fs.more.same == nil || fs.rec.State != Ready {
			continue
		}
		c := fs.more.same
		if c.key != identityKey(fs) {
			continue
		}
		if c.pending {
			pending = true
			continue
		}
		if !c.same {
			continue
		}
		fs.rec.State, fs.rec.Reason, fs.rec.Message = Delivered, "", ""
		fs.rec.SHA256 = fs.more.was.sha256
		fs.more.same, fs.more.was = nil, nil
		fs.emitted = idxOf(Delivered) // nothing new to announce: its delivery stands
		e.log.Info("written again with the content delivered: it stays delivered", "file", fs.rec.Path, "request", r.ID, "sha256", fs.rec.SHA256)
	}
	return pending
}

// sha256Of hashes the file open gives.
func sha256Of(ctx context.Context, open func() (*os.File, error)) (string, error) {
	f, err := open()
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err != nil {
			return "", err
		}
	}
}
