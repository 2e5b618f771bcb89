package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hotdrop/hotdrop/checks"
	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sftpd"
	"github.com/hotdrop/hotdrop/internal/statelock"
)

const demoRequests = `# Two Source Requests, as a studio's tracker would list them.
[[request]]
id = "SR-1042"
title = "Wednesday"
episode = "S01E03"
package_id = "PKG-77812"
source_type = "Subtitle"
language = "fr-FR"
status = "open"

[[request]]
id = "SR-1043"
title = "Wednesday"
episode = "S01E03"
package_id = "PKG-77812"
source_type = "Audio M&E"
status = "open"
files = 2          # a left and a right stem: nothing is sent until both are finished
`

const demoConfig = demoHeader + ` Relative paths are relative to this file.
state_dir = "state"

[watch]
root = "deliveries"
settle = "2s"      # production default is 30s
poll = "1s"

[requests]
files = ["requests.d/*.toml"]

[destination]
url = "sftp://studio@%s%s"
identity_file = "id_ed25519"
known_hosts = "known_hosts"
path = "{package_id}/{source_type}/{name}"

[status]
listen = "%s"   # the dashboard

[checks]
probe = %s

# Files dropped in deliveries/_bin (the File Bin) are matched to requests by their names.
[[rule]]
name = "by-name"
pattern = "{title}_{episode}_{source_type}_{language}.{ext}"
`

func cmdDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo [--dir DIR] [--keep]", stderr)
	dir := fs.String("dir", "", "folder to set the demo up in (default: a new temporary folder)")
	keep := fs.Bool("keep", false, "keep running after the sample files are delivered, so you can drop your own (Ctrl-C stops)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runDemo(ctx, *dir, *keep, stdout, stderr)
}

// runDemo is `hotdrop demo`: in dir (a new temporary folder when empty) it starts a studio's
// SFTP server, writes a config and requests for it, runs the daemon, writes sample files into
// the drop folders the way a render farm does, and shows what was delivered. With keep it
// goes on watching until ctx ends.
func runDemo(ctx context.Context, dir string, keep bool, stdout, stderr io.Writer) error {
	dir, err := demoDir(dir)
	if err != nil {
		return err
	}
	// The demo's state_dir is DIR/state (demoConfig). Locked before anything is written into
	// DIR: a second demo on the same folder must not replace the running one's keys and config.
	lock, err := statelock.Acquire(filepath.Join(dir, "state"), "hotdrop demo --dir "+dir)
	if err != nil {
		return err
	}
	defer lock.Release()
	// The demo's own lines and the progress lines the engine's loop prints interleave on
	// one writer; each line is written whole.
	d := &demo{dir: dir, studio: filepath.Join(dir, "studio"), out: &lineWriter{w: stdout}, stderr: stderr}
	d.say("hotdrop demo in %s", dir)

	stopStudio, err := d.startStudio()
	if err != nil {
		return err
	}
	defer stopStudio()
	if err := d.writeConfig(); err != nil {
		return err
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.stopDaemon = cancel
	if d.logFile, err = os.Create(filepath.Join(dir, "hotdrop.log")); err != nil {
		return err
	}
	defer d.logFile.Close()
	if err := d.startDaemon(dctx); err != nil {
		return err
	}
	requests, err := d.findDropFolders()
	if err != nil {
		d.stopDaemon() // and wait for it: its log and the state lock are released after
		<-d.done
		return err
	}
	d.writeSamples(dctx)
	if ended, err := d.waitDelivered(ctx, requests); ended {
		return err
	}
	return d.finish(ctx, keep)
}

// demo is one run of `hotdrop demo`: its folder, the studio's SFTP server it starts, the
// daemon it runs on them, and the sample files it writes into the drop folders.
type demo struct {
	dir    string
	studio string    // the studio SFTP server's root
	out    io.Writer // every line the demo and the daemon's progress print
	stderr io.Writer

	serverAddr string // the studio SFTP server's host:port
	listen     string // the dashboard's address
	cfg        *config.Config

	logFile    *os.File
	progress   *demoProgress
	stopDaemon context.CancelFunc
	done       chan error        // the daemon's outcome
	folders    map[string]string // request ID ("" for the File Bin) → its drop folder
	writers    sync.WaitGroup    // the sample files' writers
}

func (d *demo) say(format string, a ...any) { fmt.Fprintf(d.out, format+"\n", a...) }

// demoHeader starts every config the demo writes.
const demoHeader = "# hotdrop demo config: written by 'hotdrop demo'."

// demoDir makes the demo's folder: dir, or a new temporary one when dir is empty. An
// existing dir must be empty (demoMayWrite).
func demoDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "hotdrop-demo-")
		if err != nil {
			return "", err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	dir, _ = filepath.Abs(dir)
	if err := demoMayWrite(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// demoMayWrite refuses a folder that holds anything: the demo writes hotdrop.toml, a key and
// known_hosts there, and `demo --dir /etc/hotdrop` replaced a real configuration; in an
// earlier demo's folder its journal had the samples delivered, so the new ones, written
// again, were held already_delivered and the demo never ended. Only a state folder is let
// be: a demo running there now holds its lock, and says so.
func demoMayWrite(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != "state" {
			return demoRefusal(dir, e.Name())
		}
	}
	return nil
}

func demoRefusal(dir, name string) error {
	what := "the demo writes hotdrop.toml, requests.d/demo.toml, id_ed25519 and known_hosts there and would replace what is there"
	if cfg, err := os.ReadFile(filepath.Join(dir, "hotdrop.toml")); err == nil && strings.HasPrefix(string(cfg), demoHeader) {
		what = "it holds an earlier demo, whose journal has the samples delivered already; remove it first (rm -rf " + dir + ")"
	}
	return fmt.Errorf("%s is not empty (%s): %s; give --dir a new or empty folder, or none for a temporary one", dir, name, what)
}

// startStudio starts the studio's SFTP server, in process, on the studio folder, and writes
// the key hotdrop logs in with and the server's host key pinned in known_hosts. The returned
// func stops the server.
func (d *demo) startStudio() (stop func(), err error) {
	for _, p := range []string{d.studio, filepath.Join(d.dir, "requests.d"), filepath.Join(d.dir, "deliveries")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, err
		}
	}
	clientKey, err := writeDemoKey(filepath.Join(d.dir, "id_ed25519"))
	if err != nil {
		return nil, err
	}
	srvCtx, stopServer := context.WithCancel(context.Background())
	srv, err := sftpd.Start(srvCtx, sftpd.Config{Root: d.studio, User: "studio", AuthorizedKey: clientKey, Logger: newLogger(io.Discard)})
	if err != nil {
		stopServer()
		return nil, fmt.Errorf("starting the demo SFTP server: %w", err)
	}
	stop = func() {
		srv.Close()
		stopServer()
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, srv.HostKey)
	if err := os.WriteFile(filepath.Join(d.dir, "known_hosts"), []byte(line+"\n"), 0o644); err != nil {
		stop()
		return nil, err
	}
	d.say("  studio SFTP server  sftp://studio@%s%s (host key %s pinned in known_hosts)", srv.Addr, d.studio, ssh.FingerprintSHA256(srv.HostKey))
	d.serverAddr = srv.Addr
	return stop, nil
}

// writeDemoKey writes a new private key for hotdrop to log in with and returns its public half.
func writeDemoKey(path string) (ssh.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "hotdrop demo")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

// writeConfig writes the requests and the config, pointed at the studio's server and a free
// dashboard port, and loads the config as the daemon will.
func (d *demo) writeConfig() error {
	if err := os.WriteFile(filepath.Join(d.dir, "requests.d", "demo.toml"), []byte(demoRequests), 0o644); err != nil {
		return err
	}
	listen, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	cfgFile := filepath.Join(d.dir, "hotdrop.toml")
	probe := "true # the subtitle's TTML and the stems' WAV headers are checked before sending"
	if _, err := (checks.Prober{}).Available(); err != nil {
		probe = "false # ffprobe was not found: install FFmpeg to see the media checks"
		d.say("  ffprobe not found: the demo runs with [checks] probe = false (install FFmpeg to see the media checks)")
	}
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf(demoConfig, d.serverAddr, filepath.ToSlash(d.studio), listen, probe)), 0o644); err != nil {
		return err
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		return err
	}
	d.cfg, d.listen = cfg, listen
	d.say("  config              %s", cfgFile)
	d.say("  drop folders        %s", cfg.Watch.Root)
	d.say("  dashboard           http://%s/", listen)
	d.say("")
	return nil
}

// startDaemon runs the daemon as `hotdrop run` would, with the demo's progress lines as one
// more reporter and its log in the demo's folder, and returns once it watches.
func (d *demo) startDaemon(ctx context.Context) error {
	d.progress = newDemoProgress(d.out)
	started := make(chan struct{})
	d.done = make(chan error, 1)
	go func() {
		d.done <- runDaemon(ctx, d.cfg, newLogger(d.logFile), daemonHooks{reporters: []delivery.Reporter{d.progress}, started: started, stateLocked: true})
	}()
	select {
	case <-started:
		return nil
	case err := <-d.done:
		return fmt.Errorf("daemon stopped at start (log: %s): %w", d.logFile.Name(), err)
	}
}

// findDropFolders finds each request's drop folder, and the File Bin, as the daemon made
// them; it returns how many requests there are.
func (d *demo) findDropFolders() (int, error) {
	reqs, err := config.LoadRequests(d.cfg)
	if err != nil {
		return 0, err
	}
	d.folders = map[string]string{"": filepath.Join(d.cfg.Watch.Root, d.cfg.Watch.Bin)}
	for _, r := range reqs {
		rel, err := delivery.DropFolder(d.cfg.Watch.Folder, r.Fields, d.cfg.Watch.Bin)
		if err != nil {
			return 0, err
		}
		d.folders[r.ID] = filepath.Join(d.cfg.Watch.Root, filepath.FromSlash(rel))
	}
	return len(reqs), nil
}

// writeSamples starts writing every sample file into its drop folder, slowly and all at once.
func (d *demo) writeSamples(ctx context.Context) {
	for _, f := range demoFiles {
		folder := d.folders[f.request]
		d.say("  render farm writes  %s", filepath.Join(strings.TrimPrefix(folder, d.cfg.Watch.Root+string(filepath.Separator)), f.name))
		d.writers.Add(1)
		go func() {
			defer d.writers.Done()
			if err := slowWrite(ctx, filepath.Join(folder, f.name), demoContent(f)); err != nil {
				fmt.Fprintf(d.stderr, "demo writer: %v\n", err)
			}
		}()
	}
	d.say("")
}

// waitDelivered waits until every one of the requests is delivered and the File Bin holds
// its file. When the demo cannot go on (the daemon stopped, Ctrl-C, 2 minutes passed) it
// returns ended, with the demo's outcome; a Ctrl-C is no error.
func (d *demo) waitDelivered(ctx context.Context, requests int) (ended bool, err error) {
	timeout := time.After(2 * time.Minute)
	for !d.progress.allDelivered(requests) || !d.progress.binHeld() {
		select {
		case <-d.progress.changed:
		case err := <-d.done:
			d.writers.Wait()
			return true, fmt.Errorf("daemon stopped (log: %s): %w", d.logFile.Name(), err)
		case <-ctx.Done():
			d.stopDaemon()
			d.writers.Wait()
			<-d.done
			d.say("\ninterrupted; the demo folder stays at %s", d.dir)
			return true, nil
		case <-timeout:
			d.stopDaemon()
			d.writers.Wait()
			<-d.done
			return true, fmt.Errorf("the sample files were not all delivered within 2 minutes; see %s", d.logFile.Name())
		}
	}
	d.writers.Wait()
	return false, nil
}

// finish shows what arrived on the studio's server and where to look, keeps watching when
// asked to (until Ctrl-C), and stops the daemon.
func (d *demo) finish(ctx context.Context, keep bool) error {
	d.say("")
	d.say("Delivered. On the studio's server:")
	bad := d.showDelivered()
	d.showManifests()
	d.say("")
	d.say("Status files: %s", filepath.Join(d.folders["SR-1042"], ".hotdrop-status.json"))
	d.say("Journal:      %s    Log: %s", filepath.Join(d.cfg.StateDir, "state.db"), d.logFile.Name())
	if bad > 0 {
		d.stopDaemon()
		<-d.done
		return fmt.Errorf("%d delivered file(s) differ from their source", bad)
	}
	d.say("File Bin:     %s is held (no_matching_request): its name says S01E04, and no request asks for that episode", filepath.Join(d.folders[""], demoFiles[3].name))
	if keep {
		d.say("\nStill watching: drop more files into %s (Ctrl-C stops).", d.cfg.Watch.Root)
		d.say("Dashboard:    http://%s/", d.listen)
		<-ctx.Done()
	}
	d.stopDaemon()
	if err := <-d.done; err != nil {
		return err
	}
	d.say("Done. Remove the demo folder with: rm -rf %s", d.dir)
	return nil
}

// showDelivered prints where each delivered sample file is on the studio's server and whether
// it is identical to its source; it returns how many are not.
func (d *demo) showDelivered() (bad int) {
	for _, f := range demoFiles {
		if f.request == "" {
			continue // the File Bin's file is held, not delivered
		}
		local := filepath.Join(d.folders[f.request], f.name)
		remote := d.progress.remotePath(local)
		a, errA := sha256File(local)
		b, errB := sha256File(remote)
		var verdict string
		if errA != nil || errB != nil || a != b {
			verdict = fmt.Sprintf("DIFFERENT (%v %v)", errA, errB)
			bad++
		} else {
			verdict = "identical to the source (sha256 " + a[:16] + "…)"
		}
		d.say("  %s  %s", remote, verdict)
	}
	return bad
}

// showManifests prints each request's manifest on the studio's server.
func (d *demo) showManifests() {
	for _, id := range []string{"SR-1042", "SR-1043"} {
		// The manifest goes up right after a request's last file: the ingest side's signal.
		var found string
		for end := time.Now().Add(10 * time.Second); found == "" && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			matches, _ := filepath.Glob(filepath.Join(d.studio, "*", "*", id+".hotdrop.json"))
			if len(matches) == 1 {
				found = matches[0]
			}
		}
		if found == "" {
			found = "(not written yet: see the log)"
		}
		d.say("  %s  manifest: the package is whole", found)
	}
}

// freeLoopbackAddr is a loopback address with a port nothing listens on, for the demo's
// dashboard (the default 8470 may belong to a real hotdrop on this machine).
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
