package watcher

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Filesystems where the kernel sees no events for other machines' writes
// (statfs f_type magic numbers, see statfs(2)). FUSE is included because
// sshfs, glusterfs, s3fs and friends behave the same way.
var networkFS = map[uint32]string{
	0x6969:     "nfs",
	0x517B:     "smb",
	0xFE534D42: "smb2",
	0xFF534D42: "cifs",
	0x65735546: "fuse",
	0x01021997: "9p",
	0x5346414F: "afs",
	0x00C36400: "ceph",
	0x0BD00BD0: "lustre",
	0x47504653: "gpfs",
	0x7461636F: "ocfs2",
}

// detectFS names the filesystem holding dir and says whether it is a
// network or FUSE filesystem that must be polled. On error it answers
// "local": the events path still works there, and a rescan catches the rest.
func detectFS(dir string) (string, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return "", false
	}
	if name, ok := networkFS[uint32(st.Type)]; ok {
		return name, true
	}
	return "0x" + strconv.FormatUint(uint64(uint32(st.Type)), 16), false
}

// inotifyMaxUserWatches reads the current watch limit for the warning.
func inotifyMaxUserWatches() (int64, bool) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_user_watches")
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}
