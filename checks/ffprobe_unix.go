//go:build unix

package checks

import (
	"os"
	"syscall"
)

// nobody is the traditional unprivileged account's id (Debian's nobody and nogroup).
const nobody = 65534

// setUnprivileged makes the child run as the file's owner, or nobody for root's files, when
// hotdrop runs as root, so a flaw in a demuxer gains nothing; its own process group so a
// timeout kills it alone.
func setUnprivileged(a *syscall.SysProcAttr, f *os.File) {
	a.Setpgid = true
	if os.Geteuid() != 0 {
		return
	}
	uid, gid := uint32(nobody), uint32(nobody)
	if fi, err := f.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			uid, gid = st.Uid, st.Gid
		}
	}
	a.Credential = &syscall.Credential{Uid: uid, Gid: gid, NoSetGroups: true}
}
