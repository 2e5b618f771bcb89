package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/hotdrop/hotdrop/uploader"
)

// TestFailuresSayWhatToDo (issue 14, item 4): against a real sshd, a login the server
// refuses says to check the user name and send the key's .pub with its fingerprint, and a
// folder the login user may not write says which folder and which user.
func TestFailuresSayWhatToDo(t *testing.T) {
	srv := sshdtest.Start(t)

	t.Run("auth_failed", func(t *testing.T) {
		dir := t.TempDir()
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		key := filepath.Join(dir, "id_unknown")
		if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		signer, err := ssh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
			t.Fatal(err)
		}
		e := newE2E(t, dir, srv.URL(), key, srv.KnownHosts, "auto")
		e.start()
		writeFile(t, filepath.Join(e.folder("SR-1"), "a.ttml"), 100)
		s := e.waitStatus("SR-1", "failed")
		msg := s.Files[0].Reason.Message
		for _, want := range []string{
			"check the user name " + srv.User + " in destination.url",
			"send the studio the public key " + key + ".pub (ssh-ed25519 " + ssh.FingerprintSHA256(signer.PublicKey()) + ")",
			"then Retry (hotdrop retry)",
		} {
			if s.Files[0].Reason.Code != "auth_failed" || !strings.Contains(msg, want) {
				t.Errorf("auth_failed reason %s: %q lacks %q", s.Files[0].Reason.Code, msg, want)
			}
		}
	})

	t.Run("permission_denied", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("the test sshd logs in as this user, who owns the remote folder: only root can make one it may not write")
		}
		// The remote folder exists and belongs to root; the login user may not write in it.
		denied := filepath.Join(srv.Dir, "PKG-1", "SDH_CC")
		if err := os.MkdirAll(denied, 0o755); err != nil {
			t.Fatal(err)
		}
		chownToLogin(t, srv, filepath.Join(srv.Dir, "PKG-1"))
		e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
		e.start()
		writeFile(t, filepath.Join(e.folder("SR-2"), "a.scc"), 100)
		s := e.waitStatus("SR-2", "failed")
		want := "ask the studio to let the user " + srv.User + " create files in " + denied
		if s.Files[0].Reason.Code != "permission_denied" || !strings.Contains(s.Files[0].Reason.Message, want) {
			t.Errorf("permission_denied reason %s: %q lacks %q", s.Files[0].Reason.Code, s.Files[0].Reason.Message, want)
		}
	})

	t.Run("remote_exists", func(t *testing.T) {
		taken := filepath.Join(srv.Dir, "PKG-1", "Subtitle", "theirs.ttml")
		if err := os.MkdirAll(filepath.Dir(taken), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(taken, []byte("the studio's own\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		chownToLogin(t, srv, filepath.Join(srv.Dir, "PKG-1"), filepath.Dir(taken), taken)
		e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
		released := make(chan *delivery.EventReason, 4)
		e.hooks.events = func(ev delivery.Event) {
			if ev.Type == delivery.EventFileReleased {
				released <- ev.Reason
			}
		}
		e.start()
		local := filepath.Join(e.folder("SR-1"), "theirs.ttml")
		writeFile(t, local, 100)
		s := e.waitStatus("SR-1", "held")
		want := "ask the studio whether that file is theirs to keep; once they remove or rename it, Retry (hotdrop retry) delivers this one; if they want it replaced, hotdrop retry --replace"
		if s.Files[0].Reason.Code != "remote_exists" || !strings.Contains(s.Files[0].Reason.Message, want) {
			t.Errorf("remote_exists reason %s: %q lacks %q", s.Files[0].Reason.Code, s.Files[0].Reason.Message, want)
		}
		// The studio says to replace it: retry --replace does, and the journal says who asked.
		out, errOut, code := runCmd(t, "retry", "--replace", "SR-1", "--config", e.cfg.File)
		if code != exitOK || !strings.Contains(out, "SR-1: 1 file(s) released; each replaces the file of its name on the server") {
			t.Fatalf("retry --replace: exit %d\n%s%s", code, out, errOut)
		}
		e.waitStatus("SR-1", "delivered")
		sameContent(t, local, taken)
		select {
		case r := <-released:
			if r == nil || r.Code != delivery.ReasonReplaceRequested || !strings.Contains(r.Message, "is replaced by this one") {
				t.Errorf("file.released reason = %+v, want replace_requested", r)
			}
		default:
			t.Error("no file.released event for the replace")
		}
		if _, _, code := runCmd(t, "retry", "--replace", "SR-1", "--config", e.cfg.File); code != exitFail {
			t.Errorf("retry --replace with nothing held remote_exists: exit %d, want 1", code)
		}
	})
}

// TestUnreadableSourceSaysWhatToDo: a source file hotdrop may not read failed
// permission_denied with its path and no fix, where a folder it may not enter says which
// chmod to run.
func TestUnreadableSourceSaysWhatToDo(t *testing.T) {
	te := &delivery.TransferError{Code: uploader.CodePermissionDenied,
		Msg: "cannot read local file /srv/d/a.wav (permission denied): the source failed, not the destination"}
	nextSteps{user: "partner"}.advise(te, "SR-1/a.wav")
	for _, want := range []string{"read the file: chmod g+r", "Then Retry (hotdrop retry)"} {
		if !strings.Contains(te.Msg, want) {
			t.Errorf("%q lacks %q", te.Msg, want)
		}
	}
	if strings.Contains(te.Msg, "ask the studio") {
		t.Errorf("%q sends the studio a problem of the source's", te.Msg)
	}
}
