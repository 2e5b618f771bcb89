package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// DeliveredDir is the folder below watch.root that after = "move" moves delivered sources
// into; the watcher never looks inside it.
const DeliveredDir = "_delivered"

// afterDelivery applies destination.after to a source the server now holds verified: "move"
// puts it under watch.root/_delivered/ keeping its path, "delete" removes it. Both act through
// the folder holding the source, opened beneath watch.root without following a link, and only
// when the entry there is still the file that was delivered (same inode, size and mtime): a
// folder swapped for a link cannot make hotdrop move or delete anything else. A failure is
// logged and changes nothing else: the delivery itself stands.
func (e *Engine) afterDelivery(fs *fileState) {
	if e.opt.After != "move" && e.opt.After != "delete" {
		return
	}
	src, name, err := e.openParent(fs.rec.Path)
	if err != nil {
		e.log.Error("after = "+e.opt.After+": the source's folder cannot be opened safely; source left in place", "file", fs.rec.Path, "err", err)
		return
	}
	defer src.Close()
	check := sameAsDelivered(fs)
	switch e.opt.After {
	case "move":
		root, err := e.fsRoot()
		if err != nil {
			e.log.Error("after = move: source left in place", "file", fs.rec.Path, "err", err)
			return
		}
		rel, _ := safefs.Rel(root.Path(), fs.rec.Path) // openParent accepted it
		dstDir, err := root.MkdirAll(path.Join(DeliveredDir, path.Dir(rel)), 0o775, nil)
		if err != nil {
			e.log.Error("after = move: cannot create the folder; source left in place", "file", fs.rec.Path, "err", err)
			return
		}
		defer dstDir.Close()
		dst := name
		if _, err := dstDir.Lstat(dst); err == nil {
			dst += "." + e.opt.Clock.Now().UTC().Format("20060102T150405Z")
		}
		if err := src.Rename(name, dstDir, dst, check); err != nil {
			e.log.Error("after = move: cannot move the delivered source; left in place", "file", fs.rec.Path, "err", err)
			return
		}
		e.log.Info("moved delivered source", "file", fs.rec.Path, "to", filepath.Join(dstDir.Path(), dst))
	case "delete":
		if err := src.Remove(name, check); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return
			}
			e.log.Error("after = delete: cannot remove the delivered source; left in place", "file", fs.rec.Path, "err", err)
			return
		}
		e.log.Info("removed delivered source", "file", fs.rec.Path)
	}
}

// Manifest is REQUEST_ID.hotdrop.json, written beside a request's files once all are
// delivered: the ingest side's signal that the package is whole.
type Manifest struct {
	Request  string            `json:"request"`
	Metadata map[string]string `json:"metadata"`
	Files    []ManifestFile    `json:"files"`
	// Sequences sums up the frame sequences among Files (each frame is in Files, with its
	// checksum, as an ASC MHL lists them).
	Sequences   []ManifestSequence `json:"sequences,omitempty"`
	DeliveredAt time.Time          `json:"delivered_at"`
	Generator   string             `json:"generator"`

	// Compositions are an IMF package's CPLs (title and id).
	Compositions []Composition `json:"compositions,omitempty"`
}

// ManifestFile is one delivered file in a Manifest.
type ManifestFile struct {
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256"`
	RemotePath string `json:"remote_path"`
	// Media are the key properties the content check found (frame_rate, resolution,
	// duration, channels, sample_rate...).
	Media map[string]string `json:"media,omitempty"`
	// Metadata is the file's merged metadata (request, name, folder and file sidecars) where
	// it adds to or differs from the request's own fields.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ManifestSequence is one frame sequence of a Manifest.
type ManifestSequence struct {
	Name   string `json:"name"` // shot_010.[1001-2400].exr
	First  int64  `json:"first"`
	Last   int64  `json:"last"`
	Frames int    `json:"frames"`
	Size   int64  `json:"size"`
}

// manifestRun is one request's manifest upload, retrying on its goroutine until it is there.
type manifestRun struct {
	stop func()        // ends it where it stands
	done chan struct{} // closed once its goroutine has returned
	key  string        // what it says, its time left out (manifestKey)
	sent atomic.Bool   // it reached the server
}

// manifestKey is what a manifest says, but when: a request delivered again with the same
// files (a delivered file written back to its delivered bytes) has nothing new to tell the
// ingest side, and a second manifest would start its ingest again. The manifest is hashed as
// it is written, a file at a time: encoded whole (json.Encoder encodes a value into memory
// before writing it), the key of a manifest of 100,000 files held 32 MB at the daemon's peak.
func manifestKey(m Manifest) string {
	m.DeliveredAt = time.Time{}
	h := sha256.New()
	if err := writeManifest(h, &m); err != nil {
		return "" // never equal to another: sent
	}
	return hex.EncodeToString(h.Sum(nil))
}

// startManifest uploads the request's manifest from its own goroutine, retrying transient
// errors like any upload. It is called from the loop when the request becomes delivered.
//
// A request delivered again (a redelivery) while its last manifest is still being tried
// (the server refused it, or sits on it) gets the newer manifest only: the older upload is
// stopped and waited for before the newer one starts. Left to run, it could land last and
// tell the ingest side that the package is whole without the files the redelivery added.
func (e *Engine) startManifest(ctx context.Context, r *reqState, files []*fileState) {
	if !e.opt.Manifest || e.opt.RemotePath == nil {
		return
	}
	m := e.buildManifest(r, files)
	if len(m.Files) == 0 {
		// A package of nothing: the ingest side would take it for whole. Never so.
		e.log.Error("manifest: the request has no delivered file; no manifest is written", "request", r.ID)
		return
	}
	key := manifestKey(m)
	if last := e.lastManifest[r.ID]; last != nil && key != "" && last.key == key && last.sent.Load() {
		e.log.Info("manifest unchanged since it was written; not written again", "request", r.ID)
		return
	}
	name := r.ID + ".hotdrop.json"
	rel, err := e.opt.RemotePath(r.Request, name)
	if err != nil {
		e.log.Error("manifest: no remote path", "request", r.ID, "err", err)
		return
	}
	// Beside the files: a request whose files sit in sub-folders gets it at the top.
	rel = path.Join(path.Dir(rel), name)
	rt := e.newRetrier()
	st, tmpDir, id, log := e.st, e.opt.TempDir, r.ID, e.log // read on the loop, which owns them
	older := e.manifests[id]
	if older != nil {
		older.stop()
	}
	mctx, stop := context.WithCancel(e.runCtx)
	run := &manifestRun{stop: stop, done: make(chan struct{}), key: key}
	if e.manifests == nil {
		e.manifests = map[string]*manifestRun{}
		e.lastManifest = map[string]*manifestRun{}
	}
	e.lastManifest[id] = run
	for other, m := range e.manifests { // those that are over: the map holds the running ones
		select {
		case <-m.done:
			delete(e.manifests, other)
		default:
		}
	}
	e.manifests[id] = run
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(run.done)
		defer stop()
		if older != nil {
			<-older.done // stopped: it must not land after this one
		}
		// A manifest hotdrop wrote for this request before (a redelivery) is its own to
		// replace; anything else at that name is not, and is never overwritten. Asked here,
		// not on the loop: the query waits behind the journal writer's commit.
		prev, err := st.ManifestAt(mctx, id)
		if err != nil && mctx.Err() == nil { // a stop is not the journal's fault
			log.Warn("journal: cannot tell whether this request's manifest was written before; an existing one will not be replaced", "request", id, "err", err)
		}
		if e.sendManifest(mctx, rt, st, tmpDir, id, rel, &m, !prev.IsZero()) {
			run.sent.Store(true)
		}
	}()
}

// buildManifest lists a request's delivered files and sequences, and its IMF compositions.
func (e *Engine) buildManifest(r *reqState, files []*fileState) Manifest {
	m := Manifest{Request: r.ID, Metadata: r.Fields, DeliveredAt: e.opt.Clock.Now().UTC(), Generator: "hotdrop"}
	var delivered []*fileState
	for _, fs := range files {
		if fs.rec.State == Delivered {
			delivered = append(delivered, fs)
		}
	}
	if len(delivered) > 0 {
		m.Files = make([]ManifestFile, 0, len(delivered)) // one allocation, not a doubling per thousand files
	}
	for _, fs := range delivered {
		m.Files = append(m.Files, ManifestFile{Name: fs.name, Size: fs.rec.Size, SHA256: fs.rec.SHA256, RemotePath: fs.rec.RemotePath,
			Media: mediaOf(fs), Metadata: extraMetadata(r.Fields, fs.meta)})
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Name < m.Files[j].Name })
	_, framesGiven := r.Fields["frames"]
	for _, s := range sequencesOf(delivered, framesGiven) {
		ms := ManifestSequence{Name: s.name(), First: s.first(), Last: s.last(), Frames: len(s.frames)}
		for _, fs := range s.frames {
			ms.Size += fs.rec.Size
		}
		m.Sequences = append(m.Sequences, ms)
	}
	m.Compositions = e.compositionsOf(r.ID)
	return m
}

// sendManifest uploads a request's manifest, off the loop. The manifest is the ingest side's
// signal that the package is whole: whatever kept it from the server (a local temp folder
// that turned read-only, a refusal), it is tried again with backoff until it is there or
// hotdrop stops; the next start sends one still owed. replace: the one there is hotdrop's own.
func (e *Engine) sendManifest(ctx context.Context, rt retrier, st Store, tmpDir, id, rel string, m *Manifest, replace bool) (sent bool) {
	for failures := 1; ; failures++ {
		intended := false
		err := e.uploadManifest(ctx, rt, tmpDir, rel, m, replace, func(ctx context.Context) error {
			if replace {
				return nil
			}
			// Journaled before the rename: after a crash right behind it, the manifest on
			// the server is hotdrop's own and is replaced, not taken for someone else's.
			if err := st.MarkManifest(ctx, id, manifestIntent); err != nil {
				return err
			}
			intended = true
			return nil
		})
		if err == nil {
			break
		}
		if intended {
			if asTransferError(err).Code == ReasonRemoteExists {
				// The rename was refused: what is there is not ours, and stays so.
				if err := st.MarkManifest(context.WithoutCancel(ctx), id, time.Time{}); err != nil {
					rt.log.Error("journal", "err", err)
				}
			} else {
				replace = true // the rename may have happened before its answer was lost
			}
		}
		if errors.Is(err, errCancelled) || ctx.Err() != nil {
			return false
		}
		wait := rt.backoff.Delay(failures)
		rt.log.Error("manifest not written; will try again", "request", id, "remote", rel, "next_try", rt.clock.Now().Add(wait).Format(time.RFC3339), "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-rt.clock.After(wait):
		}
	}
	if err := st.MarkManifest(context.WithoutCancel(ctx), id, rt.clock.Now()); err != nil {
		rt.log.Error("journal", "err", err)
	}
	return true
}

func createManifestTemp(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("manifest temp folder %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "manifest-*.json")
	if err != nil {
		return nil, fmt.Errorf("manifest temp file in %s: %w", dir, err)
	}
	return f, nil
}

// manifestIntent is what the journal holds for a manifest between the intent to rename it
// into place and the record that it is there.
var manifestIntent = time.Unix(1, 0).UTC()

func (e *Engine) uploadManifest(ctx context.Context, rt retrier, tmpDir, rel string, m *Manifest, replace bool, intent func(context.Context) error) error {
	if tmpDir == "" {
		tmpDir = os.TempDir()
	}
	f, err := createManifestTemp(tmpDir)
	if err != nil && tmpDir != os.TempDir() {
		// state_dir turned read-only (the journal check stops hotdrop soon): the system's
		// temporary folder still lets the package be announced.
		rt.log.Warn("manifest temp folder unusable; using the system's", "folder", tmpDir, "err", err)
		f, err = createManifestTemp(os.TempDir())
	}
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	werr := writeManifest(f, m)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("manifest temp file %s: %w", f.Name(), werr)
	}
	fi, err := os.Stat(f.Name())
	if err != nil {
		return err
	}
	j := Job{LocalPath: f.Name(), RemoteRel: rel, Size: fi.Size(), ModTime: fi.ModTime(), Replace: replace,
		BeforeRename:   intent,
		Checkpoint:     func(Checkpoint) {}, // a manifest is small: never journaled for resume
		NoChecksumFile: true}
	res, err := e.transfer(ctx, &rt, j, false)
	if err == nil {
		rt.log.Info("manifest written", "remote", res.Remote)
	}
	if d, ok := rt.up.(Discarder); ok && err != nil && ctx.Err() != nil {
		// Stopped (hotdrop is stopping): a manifest is never resumed, it is sent whole again
		// at the next start, so its partial would only be litter on the server. Briefly: a
		// service manager waits for the stop.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), manifestDiscardTimeout)
		defer cancel()
		if derr := d.Discard(dctx, rel); derr != nil {
			rt.log.Warn("hotdrop is stopping: the manifest's partial upload could not be removed from the server; the next start sends the manifest again over it",
				"remote", rel, "err", derr)
		}
	}
	return err
}

// manifestDiscardTimeout bounds removing a stopped manifest's partial.
const manifestDiscardTimeout = 5 * time.Second

// fileMetadata is what events say about a file's metadata: its merged metadata (sidecars and
// name captures over the request's fields) when it was classified, else the request's fields.
func fileMetadata(r *reqState, fs *fileState) map[string]string {
	if len(fs.meta) == 0 {
		return r.Fields
	}
	return fs.meta
}

// extraMetadata is the part of a file's metadata that its request's fields do not already say.
func extraMetadata(req, file map[string]string) map[string]string {
	var out map[string]string
	for k, v := range file {
		if req[k] == v {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}
