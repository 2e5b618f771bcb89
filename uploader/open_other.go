//go:build !unix

package uploader

// openFlags: Windows has no FIFOs in the file namespace and os.Open does not follow
// reparse-point links by itself here; the Lstat check in openLocal covers the rest.
const openFlags = 0
