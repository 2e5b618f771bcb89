package uploader

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestIntendRenameEarly: a small file's rename intent is asked for before its data is sent
// (once the final name is known to be free), and the rename waits for it; a final name that
// is taken asks for no intent at all.
func TestIntendRenameEarly(t *testing.T) {
	s := sshdtest.Start(t)
	for _, d := range bothDestinations(s) {
		t.Run(d.name, func(t *testing.T) {
			o, dir := d.opts(t)
			u := newUploader(t, o)
			j, data := localFile(t, 4096, "early/frame.0001.exr")
			final := filepath.Join(dir, "early/frame.0001.exr")
			var sentAtIntent int64 = -1
			var sent int64
			j.Progress = func(done int64) { sent = done }
			release := make(chan struct{})
			waited := make(chan struct{})
			j.BeforeRename = func(context.Context) error { t.Error("BeforeRename called although IntendRename is set"); return nil }
			j.IntendRename = func(context.Context) func(context.Context) error {
				sentAtIntent = sent
				return func(ctx context.Context) error {
					close(waited)
					<-release
					return nil
				}
			}
			done := make(chan error, 1)
			go func() { _, err := u.Upload(t.Context(), j); done <- err }()
			select {
			case <-waited:
			case err := <-done:
				t.Fatalf("Upload ended before it asked for the intent: %v", err)
			}
			if sentAtIntent != 0 {
				t.Errorf("the intent was asked for after %d bytes were sent, want before any", sentAtIntent)
			}
			if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the final file is there before the intent was durable (stat: %v)", err)
			}
			close(release)
			must(t, <-done)
			assertFile(t, final, data)

			// Taken: no intent, and the file there is left alone.
			j2, _ := localFile(t, 4096, "early/frame.0001.exr")
			j2.IntendRename = func(context.Context) func(context.Context) error {
				t.Error("an intent was asked for although the final name is taken")
				return func(context.Context) error { return nil }
			}
			if _, err := u.Upload(t.Context(), j2); Classify(err).Code != CodeRemoteExists {
				t.Errorf("upload over a taken name: %v, want %s", err, CodeRemoteExists)
			}
			assertFile(t, final, data)
		})
	}
}
