//go:build unix && !linux

package safefs

func openat2(int, string, int) (int, bool, error) { return -1, false, nil }

// searchOnly: no way to open a folder without reading it here (see sys_linux.go).
const searchOnly = 0

func renameNoReplace(olddirfd int, oldname string, newdirfd int, newname string) error {
	return renameChecked(olddirfd, oldname, newdirfd, newname)
}
