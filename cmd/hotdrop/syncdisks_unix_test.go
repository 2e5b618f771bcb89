//go:build unix

package main

import "syscall"

// syncDisks writes every dirty page back (sync(2)), so that one benchmark phase's writeback
// does not land on the next.
func syncDisks() { syscall.Sync() }
