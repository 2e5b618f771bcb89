package uploader

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestSSHDLiveHashTools: the live hash runs in python3 where the server has it, and through
// head and a hash tool (openssl, else sha256sum) where it has not, or where its python3 does
// not start. Each server here has only the tools of one way, so a file verified by the live
// hash was verified that way.
func TestSSHDLiveHashTools(t *testing.T) {
	for _, tc := range []struct {
		name         string
		tools        []string
		brokenPython bool // a python3 that fails at once, beside the tools
	}{
		{"python3", []string{"sh", "python3"}, false},
		{"head and sha256sum", []string{"sh", "head", "sha256sum"}, false},
		{"a broken python3", []string{"sh", "head", "sha256sum"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := sshdtest.ToolPath(t, tc.tools...)
			if tc.brokenPython {
				must(t, os.WriteFile(filepath.Join(path, "python3"), []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o755))
			}
			s := sshdtest.StartWith(t, sshdtest.Options{Path: path})
			u, logs := loggedUploader(t, s, nil)
			j, data := localFile(t, liveHashFrom+3*liveHashStep/2, "live/movie.mxf")
			res, err := u.Upload(t.Context(), j)
			must(t, err)
			assertFile(t, filepath.Join(s.Dir, "live", "movie.mxf"), data)
			if res.Verified != VerifyHash || !strings.Contains(logs.String(), "verified by the hash the server took while the file was written") {
				t.Errorf("verified %q; want hash, by the live hash; log:\n%s", res.Verified, logs)
			}
		})
	}
}

// TestLiveHashFeedSteps: the live hash's script runs one head process per line it is told,
// so it is told to read on in steps of liveHashStep, not at every acknowledged write (a
// 2 GiB file cost the server thousands of processes); the steps still add up to the whole
// file, and the digest the script prints comes back.
func TestLiveHashFeedSteps(t *testing.T) {
	const size = 5*liveHashStep + 12345
	const write = openSSHMaxWrite
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	l := &liveHash{next: make(chan int64, 1), ended: make(chan struct{}), stop: func() {
		inR.Close()
		outW.Close()
	}}
	type fed struct {
		sum string
		err error
	}
	done := make(chan fed, 1)
	go func() {
		sum, err := l.feed(inW, bufio.NewReader(outR), size)
		done <- fed{sum, err}
	}()

	// The script's side: it says it runs, reads the lines, prints a digest after "0".
	lines := make(chan []int64, 1)
	go func() {
		var got []int64
		defer func() { lines <- got }()
		if _, err := io.WriteString(outW, "@hotdrop live\n"); err != nil {
			return
		}
		sc := bufio.NewScanner(inR)
		for sc.Scan() {
			n, err := strconv.ParseInt(sc.Text(), 10, 64)
			if err != nil {
				t.Errorf("the script was told %q", sc.Text())
				return
			}
			if n == 0 {
				_, _ = io.WriteString(outW, strings.Repeat("ab", 32)+" *stdin\n")
				return
			}
			got = append(got, n)
		}
	}()

	// Every acknowledged write's offset, in order, as the pump offers them.
	for off := int64(write); off < size; off += write {
		l.next <- off
	}
	l.next <- size
	l.end()
	res := <-done
	got := <-lines
	if res.err != nil || res.sum != strings.Repeat("ab", 32) {
		t.Fatalf("feed = %q, %v; want the script's digest", res.sum, res.err)
	}
	var total int64
	for i, n := range got {
		total += n
		if n < liveHashStep && i < len(got)-1 {
			t.Errorf("line %d told the script to read %d bytes; every line but the last must be at least %d", i, n, liveHashStep)
		}
	}
	if total != size {
		t.Errorf("the script was told to read %d bytes in all, want %d (lines: %v)", total, size, got)
	}
	if want := size/liveHashStep + 1; len(got) > want {
		t.Errorf("the script was told %d lines (%d head processes), want at most %d", len(got), len(got), want)
	}
}
