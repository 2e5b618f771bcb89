//go:build windows

package watcher

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

func fileInfoOf(fi fs.FileInfo) FileInfo {
	return FileInfo{Size: fi.Size(), ModTime: fi.ModTime()}
}

func devOf(fs.FileInfo) (uint64, bool) { return 0, false }

// freshStat is a plain Lstat on Windows: os offers no O_NOFOLLOW there, and
// opening a file a writer still holds could clash with its sharing mode.
func freshStat(abs string) (FileInfo, error) {
	fi, err := os.Lstat(abs)
	if err != nil {
		return FileInfo{}, err
	}
	if !fi.Mode().IsRegular() {
		return FileInfo{}, fmt.Errorf("%s: %w", abs, errNotRegular)
	}
	return fileInfoOf(fi), nil
}

// freshStatIn is an Lstat beneath root on Windows, for the reason freshStat gives.
func freshStatIn(root *safefs.Root, rel string) (FileInfo, error) {
	fi, err := root.Lstat(rel)
	if err != nil {
		return FileInfo{}, err
	}
	if !fi.Mode().IsRegular() {
		return FileInfo{}, fmt.Errorf("%s: %w", rel, errNotRegular)
	}
	return fileInfoOf(fi), nil
}
