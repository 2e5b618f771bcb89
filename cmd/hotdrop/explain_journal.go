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
	st, err := store.OpenReadOnly(db)
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

// delivered is the journal's record of the file at p when it holds the file as delivered.
func (j explainJournal) delivered(p string) (store.File, os.FileInfo, bool) {
	f, ok := j.files[p]
	if !ok || f.State != "delivered" {
		return f, nil, false
	}
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
		return f, nil, false
	}
	return f, fi, true
}

// deliveredAsIs reports whether the journal holds the very file at p, as it is now, as
// delivered: the daemon never judges such a file again (its watcher knows it settled), so
// nothing that would hold it now (a closed request, a rule) applies.
func (j explainJournal) deliveredAsIs(p string) (store.File, bool) {
	f, fi, ok := j.delivered(p)
	return f, ok && fi.ModTime().Equal(f.ModTime) && (f.Inode == 0 || safefs.Inode(fi) == f.Inode)
}

// deliveredAgain reports whether the file at p was written again since the journal holds it
// as delivered, with the bytes that were delivered: once it is judged and nothing holds it,
// the daemon keeps it delivered (its same-content check).
func (j explainJournal) deliveredAgain(p string) (store.File, string, bool) {
	f, _, ok := j.delivered(p)
	if !ok {
		return f, "", false
	}
	sum, err := sha256File(p)
	return f, sum, err == nil && sum == f.SHA256
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
