//go:build unix && !linux

package safefs

func openat2(int, string, int) (int, bool, error) { return -1, false, nil }

func renameNoReplace(olddirfd int, oldname string, newdirfd int, newname string) error {
	return renameChecked(olddirfd, oldname, newdirfd, newname)
}
