// Package watcher tells hotdrop which files under the watch root are complete.
//
// It watches every folder below a root (fsnotify on local disks, polling on
// NFS, SMB/CIFS and FUSE mounts where other machines' writes produce no
// events), and reports each regular file as Settling while it changes and as
// Ready once its size, modification time and inode have stayed the same for
// the settle period. Events only start and restart that clock; they never
// prove a file complete. Symbolic links, FIFOs, sockets and devices are
// reported once as Unsafe and never followed or opened. A folder hotdrop may
// not list or enter is reported once as Denied (the files known in it, or the
// folder itself) and polled until it can be read, when its files settle anew.
//
// All debouncing, settling and "too many events, rescan the tree" logic lives
// here and nowhere else. The watcher degrades instead of dying: a lost event
// queue triggers a full rescan, and a folder whose watch cannot be added is
// polled until the watch can be re-armed (with capped exponential backoff).
//
// It is not for deciding what a file means: sidecars, markers, requests and
// uploads belong to the packages downstream, which consume the Event stream
// from Run. The watcher never modifies, moves or opens for writing any file.
package watcher
