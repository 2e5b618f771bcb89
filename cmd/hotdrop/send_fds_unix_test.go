//go:build unix

package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSendListsWithFewDescriptors: send kept a folder open for each level of a tree it
// walked and for each folder a named file was in, for the whole send: a tree 100 deep, or
// files named from 300 folders, ran out of descriptors under a limit of 64 where the listing
// by path had worked.
func TestSendListsWithFewDescriptors(t *testing.T) {
	dir := t.TempDir()
	deep := filepath.Join(dir, "deep")
	p := deep
	for i := range 100 {
		p = filepath.Join(p, fmt.Sprintf("d%d", i))
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "a.wav"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	var files []string
	for i := range 300 {
		f := filepath.Join(dir, "wide", fmt.Sprintf("f%d", i), "b.wav")
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("b"), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	low := lim
	low.Cur = 64
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("cannot lower the descriptor limit: %v", err)
	}
	items, err := collectSend(append([]string{deep}, files...), "", nil, io.Discard)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if err != nil || len(items) != 301 {
		t.Fatalf("listing a tree 100 deep and 300 files from 300 folders under a limit of 64 descriptors: %d items, %v", len(items), err)
	}
	if !strings.HasSuffix(items[0].rel, "/d99/a.wav") {
		t.Errorf("first item %q, want the deep file", items[0].rel)
	}
	f, err := items[300].open()
	if err != nil {
		t.Fatalf("opening a listed file: %v", err)
	}
	f.Close()
}
