//go:build !unix && !windows

package statelock

import (
	"errors"
	"os"
)

var errWouldBlock = errors.New("would block")

// lockFile is a no-op where the platform has no advisory lock hotdrop knows how to take
// (plan9, js, wasip1): hotdrop does not run as a daemon there.
func lockFile(*os.File) error { return nil }
