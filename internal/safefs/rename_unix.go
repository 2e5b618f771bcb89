//go:build unix

package safefs

import "golang.org/x/sys/unix"

// renameChecked refuses an existing target, then renames: where the kernel cannot do both in
// one call, a target that appears in between is replaced (both names are in folders the
// caller opened, so nothing outside them is touched).
func renameChecked(olddirfd int, oldname string, newdirfd int, newname string) error {
	var st unix.Stat_t
	if err := fstatat(newdirfd, newname, &st); err == nil {
		return unix.EEXIST
	} else if err != unix.ENOENT {
		return err
	}
	return unix.Renameat(olddirfd, oldname, newdirfd, newname)
}

func statMtime(st *unix.Stat_t) (int64, int64) { return st.Mtim.Unix() }
