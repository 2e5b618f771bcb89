//go:build unix

package config

import (
	"io/fs"
	"os"
	"syscall"
)

// owner returns a file's owner and group.
func owner(fi fs.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// allows says whether the mode bits give the account every permission in want (4 read,
// 2 write, 1 enter/execute), as the kernel decides: owner bits for the owner, group bits for
// its groups, others' bits for the rest; root passes (ACLs are not read).
func (a Account) allows(fi fs.FileInfo, want fs.FileMode) bool {
	if a.UID == 0 {
		return true
	}
	uid, gid, ok := owner(fi)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case uid == a.UID:
		perm >>= 6
	case a.inGroup(gid):
		perm >>= 3
	}
	return perm&want == want
}

// writable asks the kernel whether this process may write into the folder p, which mode
// bits do not say for a read-only mount.
func writable(p string) bool {
	return syscall.Access(p, 2|1) == nil
}

func groups() []int {
	g, _ := os.Getgroups()
	return g
}
