package safefs

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// searchOnly opens a folder to act beneath it without reading it (O_PATH): a folder hotdrop
// may enter and write into but not list, an ingest drop box of mode 0733, say.
const searchOnly = unix.O_PATH

// noOpenat2 is set once the kernel (older than 5.6, or a seccomp filter) refused openat2.
var noOpenat2 atomic.Bool

// openat2 resolves rel beneath dirfd in one call, refusing every link and every escape.
// ok is false when openat2 is not available and the caller must walk.
func openat2(dirfd int, rel string, flags int) (fd int, ok bool, err error) {
	if noOpenat2.Load() {
		return -1, false, nil
	}
	how := &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	for range 16 {
		fd, err = unix.Openat2(dirfd, rel, how)
		switch err {
		case nil:
			return fd, true, nil
		case unix.ENOSYS, unix.EPERM:
			if err == unix.ENOSYS || !probeOpenat2(dirfd) {
				noOpenat2.Store(true)
				return -1, false, nil
			}
			return -1, true, err
		case unix.EINTR, unix.EAGAIN: // EAGAIN: a rename raced the lookup; try again
			continue
		}
		return -1, true, err
	}
	return -1, true, err
}

// probeOpenat2 tells a seccomp filter's EPERM from a real permission error.
func probeOpenat2(dirfd int) bool {
	fd, err := unix.Openat2(dirfd, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

func renameNoReplace(olddirfd int, oldname string, newdirfd int, newname string) error {
	err := unix.Renameat2(olddirfd, oldname, newdirfd, newname, unix.RENAME_NOREPLACE)
	if err == unix.ENOSYS || err == unix.EINVAL {
		return renameChecked(olddirfd, oldname, newdirfd, newname)
	}
	return err
}
