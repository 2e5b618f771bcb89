package uploader

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestSourceReadErrorIsTheSources: a read of the local file that fails (here EBADF, from a
// descriptor opened write-only: a real error of the system's, as EIO or ESTALE are from an
// NFS source) is transient, tagged Source, and says in the system's words that the source
// failed, not the destination; nothing is published.
func TestSourceReadErrorIsTheSources(t *testing.T) {
	ts := startServer(t, "")
	dests := map[string]func() (*Uploader, string){
		"sftp": func() (*Uploader, string) { return newUploader(t, ts.options()), ts.root },
		"file": func() (*Uploader, string) {
			root := t.TempDir()
			return newUploader(t, Options{URL: "file://" + root}), root
		},
	}
	for name, dest := range dests {
		t.Run(name, func(t *testing.T) {
			u, root := dest()
			j, _ := localFile(t, 300000, "PKG/a.bin")
			j.Open = func() (*os.File, error) { return os.OpenFile(j.LocalPath, os.O_WRONLY, 0) }
			_, err := u.Upload(t.Context(), j)
			e := wantCode(t, err, CodeTransient, true)
			if !e.Source {
				t.Errorf("a local read error is not tagged Source: %+v", e)
			}
			if !errors.Is(err, syscall.EBADF) {
				t.Errorf("error %v does not wrap the system's EBADF", err)
			}
			r := e.Reason()
			t.Logf("reason: %s", r)
			for _, want := range []string{j.LocalPath, syscall.EBADF.Error(), "not the destination"} {
				if !strings.Contains(r, want) {
					t.Errorf("Reason() = %q, want it to say %q", r, want)
				}
			}
			if got := files(t, root); len(got) != 0 && !(len(got) == 1 && strings.HasSuffix(got[0], ".partial")) {
				t.Errorf("files published after a failed read: %v", got)
			}
		})
	}
}

// TestUnknownErrorDefault: an error no rule recognises and that holds no answer of the
// server's is transient and the destination's, as delivery treats one; a refusal in the
// server's words stays permanent.
func TestUnknownErrorDefault(t *testing.T) {
	e := Classify(errors.New("ssh: unexpected packet in response to channel open"))
	if e.Code != CodeTransient || !e.Transient || e.Source {
		t.Errorf("Classify(unknown) = %s transient=%v source=%v, want transient, destination side", e.Code, e.Transient, e.Source)
	}
	if !strings.Contains(e.Reason(), "unexpected packet") {
		t.Errorf("Reason() = %q, want the error's own words", e.Reason())
	}
}
