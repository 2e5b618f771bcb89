package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/internal/backoff"
	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/internal/statelock"
	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/store"
	"github.com/hotdrop/hotdrop/uploader"
)

const sendSynopsis = `send PATH... [--to DIR] [--config FILE] [--replace] [--streams N|auto]

Uploads files and folders (with their sub-folders) once, with the destination of the config:
the same transfer engine as the daemon (temporary names, resume from the journal in
state_dir, names policy, verify, checksum files), without requests or events. DIR is a
folder below the destination URL's folder. A progress bar is drawn on a terminal; otherwise
one line per file. Exit 0 when every file was delivered, 1 when any failed, 64 on a wrong
command line, 78 on a config error.`

// sendAttempts bounds the retries of a transient error in a one-shot send; each attempt
// resumes from the last checkpoint, so a flaky link still finishes. The waits between them
// (sendBackoff: 1s, 2s, 4s…) have no jitter: one person runs send, not a fleet.
const sendAttempts = 6

var sendBackoff = backoff.Policy{Base: time.Second, Max: time.Minute}

// sendItem is one local file and where it goes.
type sendItem struct {
	local string // absolute
	rel   string // slash path below the destination URL's folder
	size  int64
	mtime time.Time
	// root is the folder the file is read beneath (the folder named, or a named file's own
	// folder), under its slash path there, and listed what the listing saw. The root is
	// opened when the file is: a send of files from thousands of folders must not hold a
	// descriptor for each.
	root   string
	under  string
	listed fs.FileInfo
}

func cmdSend(args []string, stdout, stderr io.Writer) error {
	fl := newFlags("send", sendSynopsis, stderr)
	cfgPath := fl.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	to := fl.String("to", "", "folder below the destination URL's folder to upload into")
	replace := fl.Bool("replace", false, "replace remote files of the same name instead of refusing")
	streams := fl.String("streams", "", `SFTP streams per large file: a number, or "auto" (default: destination.streams)`)
	// Flags may follow the paths: parse, take the next path, parse again.
	var paths []string
	for {
		if err := fl.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err.Error()}
		}
		if fl.NArg() == 0 {
			break
		}
		paths = append(paths, fl.Arg(0))
		args = fl.Args()[1:]
	}
	if len(paths) == 0 {
		return usageError{"send: name at least one file or folder to upload"}
	}
	dir, err := cleanTo(*to)
	if err != nil {
		return usageError{err.Error()}
	}
	var n int
	if *streams != "" {
		if n, err = parseStreams(*streams); err != nil {
			return usageError{err.Error()}
		}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *streams != "" {
		cfg.Destination.Streams = n
	}
	items, err := collectSend(paths, dir, cfg.Watch.Ignore, stderr)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNothingToSend) || errors.Is(err, safefs.ErrUnsafe) {
			return usageError{err.Error()} // the command line names nothing to send
		}
		return err // a folder it may not read, descriptors run out: not the command line's fault
	}
	if afterSendListing != nil {
		afterSendListing()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runSend(ctx, cfg, items, *replace, stdout, stderr)
}

// afterSendListing, when a test sets it, runs between send's listing and its upload.
var afterSendListing func()

// parseStreams reads --streams: "auto" (0) or 1 to config.MaxStreams.
func parseStreams(s string) (int, error) {
	if s == "auto" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > config.MaxStreams {
		return 0, fmt.Errorf(`--streams %q: want "auto" or a number of streams from 1 to %d`, s, config.MaxStreams)
	}
	return n, nil
}

// cleanTo checks --to: a relative slash path that stays below the URL's folder.
func cleanTo(to string) (string, error) {
	to = strings.Trim(filepath.ToSlash(to), "/")
	if to == "" {
		return "", nil
	}
	if c := path.Clean(to); c != to || c == ".." || strings.HasPrefix(c, "../") || strings.Contains(to, "/../") {
		return "", fmt.Errorf("--to %q: want a clean folder path below the destination folder, without ..", to)
	}
	return to, nil
}

// collectSend expands the paths into files. A folder keeps its own name and sub-folders
// below DIR; links and special files are skipped (hotdrop never follows them), and so are
// writers' temp files that watch.ignore names. Each folder named is opened as a safefs.Root
// (a file: its own folder) and listed through descriptors beneath it, so a sub-folder swapped
// for a link is never walked; the files are opened beneath the same roots when they are sent
// (sendItem.open).
func collectSend(paths []string, dir string, ignore []string, stderr io.Writer) ([]sendItem, error) {
	c := &sendCollector{dir: dir, ignore: ignore, stderr: stderr}
	for _, arg := range paths {
		if err := c.arg(arg); err != nil {
			return nil, err
		}
	}
	if len(c.items) == 0 {
		return nil, fmt.Errorf("send: %w in %s", errNothingToSend, strings.Join(paths, ", "))
	}
	return c.items, nil
}

var errNothingToSend = errors.New("nothing to upload")

// sendCollector gathers a send's files.
type sendCollector struct {
	dir    string
	ignore []string
	stderr io.Writer
	items  []sendItem
}

func (c *sendCollector) ignored(name string) bool {
	for _, pat := range c.ignore {
		if ok, _ := filepath.Match(pat, name); ok {
			return true
		}
	}
	return false
}

func (c *sendCollector) add(root *safefs.Root, under, remote string, fi fs.FileInfo) {
	c.items = append(c.items, sendItem{local: filepath.Join(root.Path(), filepath.FromSlash(under)), rel: path.Join(c.dir, remote),
		size: fi.Size(), mtime: fi.ModTime(), root: root.Path(), under: under, listed: fi})
}

// arg lists one path of the command line.
func (c *sendCollector) arg(arg string) error {
	abs, err := filepath.Abs(arg)
	if err != nil {
		return fmt.Errorf("%s: %w", arg, err)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return fmt.Errorf("cannot send %s: %w", arg, err)
	}
	switch {
	case fi.Mode().IsRegular():
		root, err := safefs.OpenRoot(filepath.Dir(abs))
		if err != nil {
			return fmt.Errorf("cannot send %s: %w", arg, err)
		}
		defer root.Close()
		name := filepath.Base(abs)
		if fi, err = root.Lstat(name); err != nil {
			return fmt.Errorf("cannot send %s: %w", arg, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("cannot send %s: it %s", arg, safefs.TypeRefusal(fi.Mode()))
		}
		c.add(root, name, name, fi)
		return nil
	case !fi.IsDir():
		return fmt.Errorf("cannot send %s: it %s", arg, safefs.TypeRefusal(fi.Mode()))
	}
	root, err := safefs.OpenRoot(abs)
	if err != nil {
		return fmt.Errorf("cannot send %s: %w", arg, err)
	}
	defer root.Close()
	// OpenRoot follows a link at the folder's own name: it must be the folder just looked at.
	if st, err := root.Stat(); err != nil || !safefs.SameIdentity(st, fi) {
		return fmt.Errorf("cannot send %s: it was replaced while send opened it; run the same command again", arg)
	}
	return c.walk(root, ".", filepath.Base(abs))
}

// walk lists the folder at under beneath root into remote (a slash path below DIR), in name
// order. Each folder is opened beneath the root (never through a link), read and closed
// before its sub-folders are: a deep tree holds one descriptor, not one a level.
func (c *sendCollector) walk(root *safefs.Root, under, remote string) error {
	d, err := root.OpenDir(under)
	if err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Join(root.Path(), filepath.FromSlash(under)), err)
	}
	type entry struct {
		name string
		fi   fs.FileInfo
	}
	var entries []entry
	names, err := d.Names()
	if err != nil {
		err = fmt.Errorf("reading %s: %w", d.Path(), err)
	}
	slices.Sort(names)
	for _, name := range names {
		if err != nil {
			break
		}
		if c.ignored(name) {
			continue
		}
		fi, lerr := d.Lstat(name)
		switch {
		case errors.Is(lerr, fs.ErrNotExist): // gone since the folder was listed
		case lerr != nil:
			err = fmt.Errorf("reading %s: %w", filepath.Join(d.Path(), name), lerr)
		default:
			entries = append(entries, entry{name, fi})
		}
	}
	dirPath := d.Path()
	d.Close()
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dirPath, e.name)
		switch {
		case e.fi.Mode().IsRegular():
			c.add(root, path.Join(under, e.name), path.Join(remote, e.name), e.fi)
			continue
		case !e.fi.IsDir():
			fmt.Fprintf(c.stderr, "hotdrop: skipping %s: %s\n", p, safefs.TypeRefusal(e.fi.Mode()))
			continue
		}
		err := c.walk(root, path.Join(under, e.name), path.Join(remote, e.name))
		switch {
		case errors.Is(err, fs.ErrNotExist): // gone since the folder was listed
		case errors.Is(err, safefs.ErrUnsafe): // made a link since it was looked at
			fmt.Fprintf(c.stderr, "hotdrop: skipping %s: %s\n", p, safefs.Refusal("it became a symbolic link while send listed it"))
		case err != nil:
			return err
		}
	}
	return nil
}

// open opens the file beneath its root, never through a link at any level, and accepts the
// descriptor only when it is the file listed: same device and inode, size and mtime. It is
// the upload's Job.Open: called before the first byte and again after the last.
func (it sendItem) open() (*os.File, error) {
	root, err := safefs.OpenRoot(it.root)
	if err != nil {
		return nil, uploader.SourceError(it.local, err)
	}
	defer root.Close() // the file opened beneath it stays open
	f, err := root.Open(it.under)
	switch {
	case err == nil:
	case errors.Is(err, safefs.ErrUnsafe):
		return nil, &uploader.Error{Code: uploader.CodeUnsafePath, Source: true, Msg: "not sent", Err: err}
	case errors.Is(err, fs.ErrNotExist):
		return nil, &uploader.Error{Code: uploader.CodeChanged, Source: true, Msg: fmt.Sprintf("local file %s is gone", it.local), Err: err}
	default:
		return nil, uploader.SourceError(it.local, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, uploader.SourceError(it.local, err)
	}
	if !safefs.SameIdentity(fi, it.listed) || fi.Size() != it.size || !fi.ModTime().Equal(it.mtime) {
		f.Close()
		return nil, &uploader.Error{Code: uploader.CodeChanged, Source: true, Msg: fmt.Sprintf(
			"local file %s is no longer the file send listed (size %d, want %d); it was not sent", it.local, fi.Size(), it.size)}
	}
	return f, nil
}

// uploaderOptions turns the [destination] table into the uploader's options.
func uploaderOptions(d config.Destination, log *slog.Logger) uploader.Options {
	o := uploader.Options{
		URL: d.URL, IdentityFile: d.IdentityFile, PasswordFile: d.PasswordFile, KnownHosts: d.KnownHosts,
		Logger: log, Checksum: d.Checksum, Verify: d.Verify, Concurrency: d.Concurrency, Bandwidth: d.Bandwidth,
		TempName: d.TempName, Streams: d.Streams,
	}
	for _, w := range d.Schedule {
		o.Schedule = append(o.Schedule, uploader.Window{From: w.From, To: w.To, Bandwidth: w.Bandwidth})
	}
	return o
}

// sendRun is one `hotdrop send`: its uploader, journal, counters and output.
type sendRun struct {
	up      *uploader.Uploader
	st      *store.Store
	replace bool
	out     *sendOutput
	failed  atomic.Int64
	// resumable are the local files the journal held a checkpoint of when the run began:
	// only theirs is looked up before a first attempt (a query per file cost 4 KiB files
	// some 15 % of the client's CPU).
	resumable map[string]bool
}

func runSend(ctx context.Context, cfg *config.Config, items []sendItem, replace bool, stdout, stderr io.Writer) error {
	// send resumes from the same journal the daemon uses: a daemon uploading the same file
	// at the same time would interleave writes into one partial.
	lock, err := statelock.Acquire(cfg.StateDir, "hotdrop send --config "+cfg.File)
	if err != nil {
		return err
	}
	defer lock.Release()
	out := newSendOutput(stdout, stderr, items)
	var good []sendItem
	for _, it := range items {
		if why := matcher.NameProblem(cfg.Destination.Names, it.rel); why != "" {
			out.line("held     %s: invalid_name: %s", it.local, why)
			out.skip(it.size)
			continue
		}
		good = append(good, it)
	}
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	up, err := uploader.New(uploaderOptions(cfg.Destination, log))
	if err != nil {
		return err
	}
	defer up.Close()
	st, err := store.Open(filepath.Join(cfg.StateDir, "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	resumable, err := st.CheckpointPaths(ctx)
	if err != nil {
		return err
	}
	r := &sendRun{up: up, st: st, replace: replace, out: out, resumable: resumable}
	r.failed.Store(int64(len(items) - len(good)))
	// destination.concurrency files at a time, and on a long link more small
	// ones (the uploader says how many): theirs is a wait on round trips.
	gate := &sendGate{concurrency: max(cfg.Destination.Concurrency, 1), limit: up.FilesInFlight, changed: make(chan struct{})}
	var wg sync.WaitGroup
	out.start()
	for _, it := range good {
		if !gate.acquire(ctx, it.size) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer gate.release(it.size)
			r.sendOne(ctx, it)
		}()
	}
	wg.Wait()
	out.stop()
	n, failed := len(items), r.failed.Load()
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %d of %d files delivered; run the same command again to resume", out.doneFiles.Load(), n)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files were not delivered", failed, n)
	}
	return nil
}

// sendGate admits files in their order: at most concurrency large ones, and
// as many in all as limit says (it may grow once the first connection showed
// a long round trip).
type sendGate struct {
	concurrency int
	limit       func(concurrency int) int

	mu          sync.Mutex
	active, big int
	changed     chan struct{} // closed and replaced at every release
}

func (g *sendGate) acquire(ctx context.Context, size int64) bool {
	large := size >= uploader.SmallFileMax
	for {
		g.mu.Lock()
		if g.active < g.limit(g.concurrency) && (!large || g.big < g.concurrency) {
			g.active++
			if large {
				g.big++
			}
			g.mu.Unlock()
			return true
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

func (g *sendGate) release(size int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.active--
	if size >= uploader.SmallFileMax {
		g.big--
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// sendOne uploads one file, retrying transient errors with backoff; every attempt resumes
// from the checkpoint the last one left in the journal.
func (r *sendRun) sendOne(ctx context.Context, it sendItem) {
	f := &sendFile{run: r, it: it}
	res, err := f.upload(ctx)
	f.forgetCheckpoint(ctx, err)
	if err != nil {
		r.failed.Add(1)
		if ctx.Err() == nil {
			r.out.line("failed   %s: %s: %s", it.local, uploader.Classify(err).Code, sendFailure(it, err))
		}
		r.out.skip(it.size)
		return
	}
	r.out.done(it.size)
	r.out.line("sent     %s -> %s (%s, sha256 %s%s)", it.local, res.Remote, humanBytes(res.Size), res.SHA256, sentDetails(res))
}

// sendFile is one file of a send, across its attempts.
type sendFile struct {
	run *sendRun
	it  sendItem
	// checkpointed: the journal holds a checkpoint of the file, to delete once it is not
	// needed for a resume.
	checkpointed bool
}

// upload sends the file, again after a transient error, up to sendAttempts times.
func (f *sendFile) upload(ctx context.Context) (uploader.Result, error) {
	j := f.job(ctx)
	renameAsked := false      // the last attempt's rename failed with the link: done or not?
	var last *attemptProgress // the last upload attempt's counts
	for attempt := 1; ; attempt++ {
		if renameAsked {
			renamed, err := f.renamed(ctx, j)
			if err == nil && renamed {
				// The server renamed it before the link went: sent. The file is proved by
				// the server's hash where it has one, and its checksum file written.
				res, ferr := f.run.up.FinishPublish(ctx, j)
				if ferr == nil && res.ChecksumErr != nil {
					res.ChecksumFile, res.ChecksumErr = f.retryChecksumFile(ctx, attempt, res)
				}
				if ferr == nil {
					if last != nil { // its bytes went in this run after all
						f.run.out.add(last.counted)
						f.run.out.sent(last.counted - last.there)
						f.run.out.resumed(last.there)
					}
					return res, nil
				}
				err = ferr
			} else if err == nil {
				renameAsked = false // not renamed: its partial is sent on from its end
			}
			if renameAsked {
				if !uploader.Classify(err).Transient || ctx.Err() != nil || attempt == sendAttempts {
					return uploader.Result{}, err
				}
				// Still unreachable (or the link went again while the file was proved):
				// uploading now could find the final name taken by this very file once the
				// link is back, and call it someone else's.
				f.retryWait(ctx, attempt, err)
				continue
			}
		}
		j.Resume = nil
		// Looked up only where the journal held a checkpoint when the run began, or one was
		// saved since.
		if f.checkpointed || f.run.resumable[f.it.local] {
			if c, cerr := f.run.st.Checkpoint(ctx, f.it.local); cerr == nil {
				uc := uploader.Checkpoint(c)
				j.Resume = &uc
				f.checkpointed = true
			}
		}
		p := &attemptProgress{out: f.run.out, resumed: j.Resume != nil}
		last = p
		j.Progress = p.report
		res, err := f.run.up.Upload(ctx, j)
		if err == nil && res.ChecksumErr != nil {
			res.ChecksumFile, res.ChecksumErr = f.retryChecksumFile(ctx, attempt, res)
		}
		p.settle(res, err)
		if attempt == 1 {
			f.run.out.prior.Add(p.before(res, err))
		}
		if err == nil || !uploader.Classify(err).Transient || ctx.Err() != nil || attempt == sendAttempts {
			return res, err
		}
		renameAsked = uploader.Classify(err).RenameAsked
		f.retryWait(ctx, attempt, err)
	}
}

// retryChecksumFile writes again the checksum file of a file just delivered, whose own
// write the link cut: the file stays sent (it is never sent again for this), and the
// temporary copy the cut attempt may have left on the server is written over and renamed,
// as many times as the file itself would have been tried.
func (f *sendFile) retryChecksumFile(ctx context.Context, attempt int, res uploader.Result) (string, error) {
	err := res.ChecksumErr
	for ; attempt < sendAttempts && ctx.Err() == nil && uploader.Classify(err).Transient; attempt++ {
		wait := sendBackoff.Step(attempt)
		f.run.out.line("retrying the checksum file of %s in %v (attempt %d of %d): %v", f.it.local, wait, attempt+1, sendAttempts, err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return "", err
		}
		var remote string
		if remote, err = f.run.up.WriteChecksumFile(ctx, f.it.rel, res.ChecksumKind, res.Checksum, f.run.replace); err == nil {
			return remote, nil
		}
	}
	return "", err
}

// retryWait says the file is tried again and waits for its turn (or for ctx to end: the next
// attempt then returns at once).
func (f *sendFile) retryWait(ctx context.Context, attempt int, err error) {
	wait := sendBackoff.Step(attempt)
	f.run.out.line("retrying %s in %v (attempt %d of %d): %v", f.it.local, wait, attempt+1, sendAttempts, err)
	select {
	case <-time.After(wait):
	case <-ctx.Done():
	}
}

// renamed tells whether the server did a rename whose answer the link lost: the partial is
// gone and the final file has this size. (A partial that is still there means it did not;
// it stays for the next attempt, with a checkpoint at its end.)
func (f *sendFile) renamed(ctx context.Context, j uploader.Job) (bool, error) {
	up := f.run.up
	if _, there, err := up.Stat(ctx, up.PartialOf(j.RemoteRel)); err != nil || there {
		return false, err
	}
	n, there, err := up.Stat(ctx, j.RemoteRel)
	return err == nil && there && n == j.Size, err
}

// job is the file's upload, saving each checkpoint in the journal.
func (f *sendFile) job(ctx context.Context) uploader.Job {
	it := f.it
	return uploader.Job{
		LocalPath: it.local, Open: it.open, RemoteRel: it.rel, Size: it.size, ModTime: it.mtime, Replace: f.run.replace,
		Checkpoint: func(c uploader.Checkpoint) {
			// Not ctx: the checkpoint taken as Ctrl-C stops the upload is the one to keep.
			if err := f.run.st.SaveCheckpoint(context.WithoutCancel(ctx), it.local, store.Checkpoint(c)); err != nil {
				f.run.out.line("warning  %s: %v", it.local, err)
				return
			}
			f.checkpointed = true
		},
	}
}

// forgetCheckpoint deletes the file's checkpoint once the upload ended with err, unless
// a next run can resume from it.
func (f *sendFile) forgetCheckpoint(ctx context.Context, err error) {
	// Interrupted or still failing for network reasons: keep the checkpoint for the next run.
	keep := err != nil && uploader.Classify(err).Transient
	if f.checkpointed && !keep {
		if derr := f.run.st.DeleteCheckpoint(context.WithoutCancel(ctx), f.it.local); derr != nil {
			f.run.out.line("warning  %s: %v", f.it.local, derr)
		}
	}
}

// sendFailure is the sentence for a file that could not be sent.
func sendFailure(it sendItem, err error) string {
	if uploader.Classify(err).Code == uploader.CodeRemoteExists {
		// send keeps no record of what it delivered: the file may well be this one,
		// sent before. It is never replaced without being asked.
		return fmt.Sprintf("%s is already on the server (perhaps from an earlier send); it was left as it is: --replace sends this one over it", it.rel)
	}
	return err.Error()
}

// sentDetails is what a sent line adds about how the file went: streams, resume, checksum file.
func sentDetails(res uploader.Result) string {
	extra := ""
	if res.Streams > 1 {
		extra = fmt.Sprintf(", over %d streams", res.Streams)
	}
	if res.Resumed > 0 {
		extra += fmt.Sprintf(", resumed at %s", humanBytes(res.Resumed))
	}
	if res.ChecksumErr != nil {
		extra += fmt.Sprintf("; checksum file not written: %v", res.ChecksumErr)
	}
	return extra
}
