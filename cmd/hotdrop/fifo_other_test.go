//go:build !unix

package main

import "testing"

// mkfifo skips the test: this system has no named pipes in its file tree.
func mkfifo(t *testing.T, p string) {
	t.Helper()
	t.Skipf("no named pipes here for %s", p)
}
