package delivery

import (
	"context"
	"sync"
	"testing"

	"github.com/hotdrop/hotdrop/watcher"
)

// sumFileUploader delivers every file but fails its checksum file the first time with
// sumErr, as a link cut between the file's rename and its checksum file's does; it counts
// how often the publishing was finished again (FinishPublish).
type sumFileUploader struct {
	*fakeUploader
	sumErr error
	taken  bool // the studio's ingest takes the file from its final name at once

	mu       sync.Mutex
	finished int
}

func (u *sumFileUploader) Upload(ctx context.Context, j Job) (Result, error) {
	res, err := u.fakeUploader.Upload(ctx, j)
	if err == nil {
		res.ChecksumErr = u.sumErr
		if u.taken {
			u.fakeUploader.mu.Lock()
			delete(u.fakeUploader.remote, j.RemoteRel)
			u.fakeUploader.mu.Unlock()
		}
	}
	return res, err
}

func (u *sumFileUploader) FinishPublish(_ context.Context, j Job) (Result, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.finished++
	return Result{Remote: "/in/" + j.RemoteRel, Size: j.Size, SHA256: "sum", ChecksumFile: "/in/" + j.RemoteRel + ".sha256"}, nil
}

func (u *sumFileUploader) finishes() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.finished
}

// A checksum file the link lost after its file's rename is written again, as after a crash
// past the rename (the file is found in place and its publishing finished), and the file is
// sent once; one refused for good is left, and the file is delivered without it. A file the
// studio took from its final name meanwhile is not sent again: this process saw its rename.
func TestChecksumFileLostToTheLinkIsWrittenAgain(t *testing.T) {
	for _, tt := range []struct {
		name     string
		err      error
		taken    bool
		finishes int
	}{
		{"transient", &TransferError{Code: "connection_lost", Transient: true, Msg: "the connection was lost"}, false, 1},
		{"refused for good", &TransferError{Code: "remote_exists", Msg: "a different checksum file is there"}, false, 0},
		{"taken by the studio meanwhile", &TransferError{Code: "connection_lost", Transient: true, Msg: "the connection was lost"}, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := &sumFileUploader{fakeUploader: newFakeUploader(), sumErr: tt.err, taken: tt.taken}
			h := newHarnessFor(t, t.TempDir(), newMemStore(), up, up.fakeUploader, nil, req("SR-1", 1))
			h.drop("SR-1", "a.ttml", watcher.Ready, 10)
			h.waitState("SR-1", Delivered)
			if n := up.count(); n != 1 {
				t.Errorf("the file was sent %d times, want once", n)
			}
			if n := up.finishes(); n != tt.finishes {
				t.Errorf("publishing finished again %d times, want %d", n, tt.finishes)
			}
		})
	}
}
