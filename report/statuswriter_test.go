package report

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
)

// The writer writes the newest view of each folder, and Close leaves nothing unwritten.
func TestStatusWriterWritesNewestAndFlushesOnClose(t *testing.T) {
	root := t.TempDir()
	w := NewStatusWriter(&StatusFiles{Root: root})
	var folders []string
	for i := range 50 {
		dir := filepath.Join(root, fmt.Sprintf("SR-%d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		folders = append(folders, dir)
	}
	for round, state := range []delivery.State{delivery.Waiting, delivery.Settling, delivery.Delivered} {
		for i, dir := range folders {
			w.RequestChanged(delivery.RequestView{ID: fmt.Sprintf("SR-%d", i), Folder: dir, State: state, UpdatedAt: time.Unix(int64(round), 0)})
		}
	}
	w.Close()
	for i, dir := range folders {
		s, err := ReadStatus(dir)
		if err != nil {
			t.Fatalf("SR-%d: %v", i, err)
		}
		if s.Request.State != string(delivery.Delivered) {
			t.Errorf("SR-%d: status file says %s, want the newest view's delivered", i, s.Request.State)
		}
	}
	// After Close a view is still written (at once).
	w.RequestChanged(delivery.RequestView{ID: "SR-0", Folder: folders[0], State: delivery.Held})
	if s, err := ReadStatus(folders[0]); err != nil || s.Request.State != string(delivery.Held) {
		t.Errorf("after Close: %+v, %v", s.Request, err)
	}
}

// A status file is rewritten when what it says changes, and left alone (same file, same
// updated_at) when only the view's stamp is newer: a restart of 10,000 idle requests writes
// none of them.
func TestStatusFileRewrittenOnlyWhenItChanges(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "SR-1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sf := &StatusFiles{Root: root}
	stat := func() os.FileInfo {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, StatusFileName))
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	file := func(meta string) []delivery.FileView {
		return []delivery.FileView{{Name: "a.srt", State: delivery.Settling, Size: 3, Metadata: map[string]string{"updated_at": meta}}}
	}
	v := delivery.RequestView{ID: "SR-1", Folder: dir, State: delivery.Waiting, Files: file("one"), UpdatedAt: time.Unix(100, 0)}
	steps := []struct {
		what    string
		change  func(*delivery.RequestView)
		written bool
	}{
		{"a newer stamp only", func(v *delivery.RequestView) {}, false},
		{"another state", func(v *delivery.RequestView) { v.State = delivery.Settling }, true},
		{"the same state again", func(v *delivery.RequestView) {}, false},
		{"a file's own updated_at metadata", func(v *delivery.RequestView) { v.Files = file("two") }, true},
	}
	sf.RequestChanged(v)
	for i, st := range steps {
		before := stat()
		st.change(&v)
		v.UpdatedAt = time.Unix(int64(200+i), 0)
		sf.RequestChanged(v)
		s, err := ReadStatus(dir)
		if err != nil {
			t.Fatal(err)
		}
		if written := !os.SameFile(stat(), before); written != st.written {
			t.Errorf("%s: status file rewritten = %v, want %v", st.what, written, st.written)
		}
		if st.written && (!s.UpdatedAt.Equal(v.UpdatedAt) || s.Request.State != string(v.State) || s.Files[0].Metadata["updated_at"] != v.Files[0].Metadata["updated_at"]) {
			t.Errorf("%s: status file says %s, %s, metadata %v; want the new view's", st.what, s.Request.State, s.UpdatedAt, s.Files[0].Metadata)
		}
		if !st.written && s.UpdatedAt.Equal(v.UpdatedAt) {
			t.Errorf("%s: updated_at changed to %s though nothing else did", st.what, s.UpdatedAt)
		}
	}
}
