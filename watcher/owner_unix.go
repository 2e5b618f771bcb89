//go:build unix

package watcher

import (
	"io/fs"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// ownerOf names the owner and group of what fi describes (an Lstat from os or safefs), by
// name where the system knows one, else by number.
func ownerOf(fi fs.FileInfo) (owner, group string, ok bool) {
	var uid, gid uint32
	switch st := fi.Sys().(type) {
	case *syscall.Stat_t:
		uid, gid = st.Uid, st.Gid
	case *unix.Stat_t:
		uid, gid = st.Uid, st.Gid
	default:
		return "", "", false
	}
	owner, group = strconv.FormatUint(uint64(uid), 10), strconv.FormatUint(uint64(gid), 10)
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username
	}
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return owner, group, true
}
