// Package store is hotdrop's journal: a SQLite database (state_dir/state.db) that remembers
// every request and every file hotdrop has seen, what state each is in, and — the reason it
// exists — which files were delivered, so that a restart or a crash never uploads a file twice
// and never forgets one.
//
// It is a plain record store: it knows nothing of watchers, matching or transfers, and imports
// no pipeline package. The orchestration layer decides what the records mean.
//
// Writes are committed with synchronous=NORMAL in WAL mode: they survive a killed process,
// and one fsync per small file would cap a daemon at a few hundred files a second. The record
// of an intent to rename guards against a double delivery and is committed with FULL sync.
package store
