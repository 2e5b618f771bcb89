// Package safefs resolves paths beneath one folder (watch.root) without following a symbolic
// link at any level, for a tree that other users may change while hotdrop works in it.
//
// Render-farm users may rename anything inside the drop tree: between the moment hotdrop looks
// at a file and the moment it opens, deletes or moves it, any folder on the file's path may
// have become a symbolic link to somewhere they could not read themselves. Every operation here
// therefore starts from a descriptor of the root and walks down one component at a time with
// O_NOFOLLOW|O_DIRECTORY (on Linux a single openat2 with RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS),
// and acts on the final name through the descriptor of its folder: a link anywhere on the way,
// or a path leaving the root, is refused with an error wrapping ErrUnsafe. Files are opened with
// O_NONBLOCK and checked with Fstat, so a FIFO swapped in can never block the caller, and only
// regular files are returned.
//
// os.Root is not enough on its own: it confines operations beneath the root but follows links
// that stay inside it (one request's folder made to point at another's), and it offers no
// rename between two folder descriptors. Outside unix the package falls back to os.Root with
// an identity check (Lstat, open, compare device and inode) at every level.
//
// It is not a sandbox for hostile code in the same process, and it does not make a file's
// contents stable: callers compare the identity they settled with the one they opened.
package safefs
