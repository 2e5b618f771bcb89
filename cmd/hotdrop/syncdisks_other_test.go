//go:build !unix

package main

// syncDisks does nothing here (no sync(2)); a phase's writeback may land on the next.
func syncDisks() {}
