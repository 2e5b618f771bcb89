//go:build !unix

package uploader

import "os"

// openFlags: Windows has no FIFOs in the file namespace and os.Open does not follow
// reparse-point links by itself here; the Lstat check in openLocal covers the rest.
const openFlags = 0

// inodeOf is unknown here; size and mtime still identify the file.
func inodeOf(os.FileInfo) uint64 { return 0 }
