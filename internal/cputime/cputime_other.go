//go:build !unix && !windows

package cputime

import "time"

// Self is 0 here: this system has no call for it that Go exposes.
func Self() time.Duration { return 0 }
