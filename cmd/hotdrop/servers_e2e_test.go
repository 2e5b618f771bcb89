package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

const serversRequests = `
[[request]]
id = "SR-901"
title = "Wednesday"
package_id = "PKG-9"
source_type = "Non-IMF delivery"
files = 3
`

// TestEndToEndServers runs the whole daemon against each real SFTP server studios run:
// OpenSSH, rclone serve sftp (no VFS cache: writes only in order, paths from its own root,
// no shell) and ProFTPD mod_sftp (no shell). Three files, one of 50 MB and one in a
// sub-folder with a space in its name, are delivered byte-identical with their checksum
// files and no partial left. Under CI=true none of the servers may be skipped.
func TestEndToEndServers(t *testing.T) {
	for _, kind := range sshdtest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := sshdtest.StartKind(t, kind)
			e := newE2EWith(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto", `names = "any"`)
			if err := os.WriteFile(filepath.Join(e.dir, "requests.d", "r.toml"), []byte(serversRequests), 0o644); err != nil {
				t.Fatal(err)
			}
			e.drops = map[string]string{"SR-901": "Wednesday/Non-IMF delivery [SR-901]"}
			e.start()
			drop := e.folder("SR-901")
			local := map[string]string{
				"reel1.pdf":             filepath.Join(drop, "reel1.pdf"),
				"notes.xml":             filepath.Join(drop, "notes.xml"),
				"Sub Folder/ep1_en.srt": filepath.Join(drop, "Sub Folder", "ep1_en.srt"),
			}
			if err := os.MkdirAll(filepath.Join(drop, "Sub Folder"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, local["Sub Folder/ep1_en.srt"], 70<<10)
			writeFile(t, local["notes.xml"], 1<<20)
			writeFile(t, local["reel1.pdf"], 50<<20)
			s := e.waitStatusWithin("SR-901", "delivered", serversDeadline)
			remote := filepath.Join(srv.Dir, "PKG-9", "Non-IMF_delivery")
			for _, f := range s.Files {
				if f.State != "delivered" || len(f.SHA256) != 64 {
					t.Errorf("file %+v, want delivered with its sha256", f)
				}
			}
			sameContent(t, local["reel1.pdf"], filepath.Join(remote, "reel1.pdf"))
			sameContent(t, local["notes.xml"], filepath.Join(remote, "notes.xml"))
			sameContent(t, local["Sub Folder/ep1_en.srt"], filepath.Join(remote, "Sub Folder", "ep1_en.srt"))
			got := remoteFiles(t, srv.Dir)
			want := []string{
				"PKG-9/Non-IMF_delivery/SR-901.hotdrop.json",
				"PKG-9/Non-IMF_delivery/Sub Folder/ep1_en.srt", "PKG-9/Non-IMF_delivery/Sub Folder/ep1_en.srt.sha256",
				"PKG-9/Non-IMF_delivery/notes.xml", "PKG-9/Non-IMF_delivery/notes.xml.sha256",
				"PKG-9/Non-IMF_delivery/reel1.pdf", "PKG-9/Non-IMF_delivery/reel1.pdf.sha256",
			}
			if !slices.Equal(got, want) {
				t.Errorf("remote files = %q, want %q (no partial left)", got, want)
			}
			if n := e.uploads.Load(); n < 3 {
				t.Errorf("uploads = %d, want at least 3", n)
			}
			if kind == sshdtest.Rclone && !strings.Contains(e.logged.String(), "accepts only in-order writes") {
				t.Errorf("the log does not say that rclone serve sftp takes only in-order writes")
			}
		})
	}
}

// serversDeadline is generous: 50 MB under -race on a loaded 2-core machine, and rclone's
// first refusal of an out-of-order write costs it several seconds.
const serversDeadline = 3 * time.Minute

// lockedLog keeps what the daemon logs, for a test to look for a line.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCheckConnectCapabilities: check --connect prints, for each real server, what it found
// out: the extensions, whether writes must come in order (rclone's refusal, in its words),
// whether SSH exec can hash (OpenSSH yes; rclone and ProFTPD no, with the reason) and the
// free space. Nothing is left behind.
func TestCheckConnectCapabilities(t *testing.T) {
	for _, kind := range sshdtest.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			srv := sshdtest.StartKind(t, kind)
			e := newE2EWith(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto", "")
			code, out, errOut := hotdrop("check", "--connect", "--config", e.cfg.File)
			t.Logf("check --connect against %s:\n%s%s", kind, out, errOut)
			if code != exitOK {
				t.Fatalf("check --connect: exit %d", code)
			}
			want := map[sshdtest.Kind][]string{
				sshdtest.OpenSSH: {"posix-rename@openssh.com", "in-order writes only  no", "ssh exec (hash)       yes", "free space            "},
				sshdtest.Rclone: {"in-order writes only  yes", `SSH_FX_FAILURE "Illegal seek"`, "ssh exec (hash)       no:",
					"not implemented"},
				sshdtest.ProFTPD: {"in-order writes only  no", "ssh exec (hash)       no:", "refused"},
			}[kind]
			for _, w := range want {
				if !strings.Contains(out, w) {
					t.Errorf("check --connect output lacks %q", w)
				}
			}
			if left := remoteFiles(t, srv.Dir); len(left) != 0 {
				t.Errorf("the probe left %v", left)
			}
		})
	}
}

// TestServerWordsInFailure: a server that refuses dotfiles (ProFTPD's PathDenyFilter) fails
// the file permission_denied, and the reason carries the server's own status beside
// hotdrop's sentence in the status file, the event, the dashboard's API and the log. After temp_name =
// "{name}.partial" is set and the config reloaded, the file is delivered.
func TestServerWordsInFailure(t *testing.T) {
	srv := sshdtest.StartProFTPD(t, sshdtest.ProFTPDOptions{DenyDotfiles: true})
	e := newE2EWith(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto", "")
	var mu sync.Mutex
	var reasons []string
	e.hooks.events = func(ev delivery.Event) {
		if ev.Reason != nil {
			mu.Lock()
			reasons = append(reasons, ev.Reason.Code+": "+ev.Reason.Message)
			mu.Unlock()
		}
	}
	// The dashboard's API too: a status listener on a free loopback port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	text, err := os.ReadFile(e.cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	text = bytes.Replace(text, []byte(`listen = ""`), fmt.Appendf(nil, "listen = %q", addr), 1)
	if err := os.WriteFile(e.cfg.File, text, 0o644); err != nil {
		t.Fatal(err)
	}
	if e.cfg, err = config.Load(e.cfg.File); err != nil {
		t.Fatal(err)
	}
	e.start()
	p := filepath.Join(e.folder("SR-1"), "ep1_fr-FR.ttml")
	writeFile(t, p, 10<<10)
	s := e.waitStatusWithin("SR-1", "failed", serversDeadline)
	const words = "the server said: SSH_FX_PERMISSION_DENIED"
	if len(s.Files) != 1 || s.Files[0].Reason == nil || s.Files[0].Reason.Code != "permission_denied" ||
		!strings.Contains(s.Files[0].Reason.Message, words) {
		t.Fatalf("status files = %+v, want permission_denied with %q", s.Files, words)
	}
	t.Logf("status file reason: %s", s.Files[0].Reason.Message)
	mu.Lock()
	evWords := slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, words) })
	mu.Unlock()
	if !evWords {
		t.Errorf("no event reason carries %q: %q", words, reasons)
	}
	if !strings.Contains(e.logged.String(), words) {
		t.Errorf("the log does not carry %q", words)
	}
	resp, err := http.Get("http://" + addr + "/api/requests/SR-1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), words) {
		t.Errorf("the dashboard's /api/requests/SR-1 does not carry %q:\n%s", words, body)
	}

	cfg, err := os.ReadFile(e.cfg.File)
	if err != nil {
		t.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("[destination]\n"), []byte("[destination]\ntemp_name = \"{name}.partial\"\n"), 1)
	if err := os.WriteFile(e.cfg.File, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	e.reload <- struct{}{}
	if err := <-e.reloads; err != nil {
		t.Fatalf("reload: %v", err)
	}
	e.waitStatusWithin("SR-1", "delivered", serversDeadline)
	sameContent(t, p, filepath.Join(srv.Dir, "PKG-1", "Subtitle", "ep1_fr-FR.ttml"))
}
