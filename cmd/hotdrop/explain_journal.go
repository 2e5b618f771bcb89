package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/store"
)

// explainJournal is what explain needs of the journal to judge as the daemon does: which
// files were delivered, and which requests were delivered whole. Without it, explain told a
// file the daemon holds already_delivered that it would go, and a delivered file that it
// would go again.
type explainJournal struct {
	files         map[string]store.File // by path
	everDelivered map[string]int        // request → its files delivered at least once
	whole         map[string]bool       // request → delivered whole at least once
}

// readExplainJournal reads the journal at cfg's state_dir; none (hotdrop never ran here) is
// an empty journal, and one that cannot be read is said once and then left out.
func readExplainJournal(ctx context.Context, cfg *config.Config, warn func(string)) explainJournal {
	j := explainJournal{files: map[string]store.File{}, everDelivered: map[string]int{}, whole: map[string]bool{}}
	db := filepath.Join(cfg.StateDir, "state.db")
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return j
	}
	st, err := store.Open(db)
	if err == nil {
		defer st.Close()
		var rs []store.Request
		var files []store.File
		if rs, err = st.Requests(ctx); err == nil {
			files, err = st.Files(ctx)
		}
		for _, r := range rs {
			j.whole[r.ID] = r.Delivered
		}
		for _, f := range files {
			j.files[f.Path] = f
			if !f.DeliveredAt.IsZero() {
				j.everDelivered[f.RequestID]++
			}
		}
	}
	if err != nil {
		warn(fmt.Sprintf("cannot read the journal %s (%v): whether a request was delivered before is not judged", db, err))
	}
	return j
}

// deliveredAsIs says how the journal holds the file at p, as it is now, as delivered ("" when
// it does not): the very file delivered, or one written again with the bytes that were
// delivered, which the daemon keeps delivered too (its same-content check).
func (j explainJournal) deliveredAsIs(p string) (store.File, string) {
	f, ok := j.files[p]
	if !ok || f.State != "delivered" {
		return f, ""
	}
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
		return f, ""
	}
	if fi.ModTime().Equal(f.ModTime) && (f.Inode == 0 || safefs.Inode(fi) == f.Inode) {
		return f, "the journal holds this very file as delivered"
	}
	if sum, err := sha256File(p); err == nil && sum == f.SHA256 {
		return f, "written again since it was delivered, with the same bytes (sha256 " + sum[:16] + "…)"
	}
	return f, ""
}

// sha256File is the hex sha256 of the regular file at p.
func sha256File(p string) (string, error) {
	f, err := safefs.OpenUnder("", p) // a regular file, never through a link, never blocking on a FIFO
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
