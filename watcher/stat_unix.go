//go:build unix

package watcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hotdrop/hotdrop/internal/safefs"
	"syscall"
)

// fileInfoOf turns an Lstat or Fstat result into the file's identity. The results come from
// os and from internal/safefs, whose Sys() differ (syscall.Stat_t, unix.Stat_t): both are read.
func fileInfoOf(fi fs.FileInfo) FileInfo {
	info := FileInfo{Size: fi.Size(), ModTime: fi.ModTime()}
	if dev, ino, ok := safefs.Identity(fi); ok {
		info.Inode, info.Dev = ino, dev
	}
	return info
}

// devOf returns the device a folder lives on, only to notice mount points
// below the root (never as part of a file's identity).
func devOf(fi fs.FileInfo) (uint64, bool) {
	dev, _, ok := safefs.Identity(fi)
	return dev, ok
}

// freshStat reads a regular file's size and mtime through an open
// descriptor. On NFS, open forces the client to revalidate its attribute
// cache (close-to-open consistency), which a plain stat does not: the cache
// can be older than the settle period. It is only called on paths Lstat
// reported as regular files; O_NOFOLLOW and O_NONBLOCK make sure that even a
// path swapped for a link or a FIFO in between is neither followed nor waited
// on, and the Fstat check refuses anything that is not a regular file.
func freshStat(abs string) (FileInfo, error) {
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if isLoop(err) {
			return FileInfo{}, fmt.Errorf("%s: %w", abs, errNotRegular)
		}
		return FileInfo{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return FileInfo{}, err
	}
	if !fi.Mode().IsRegular() {
		return FileInfo{}, fmt.Errorf("%s: %w", abs, errNotRegular)
	}
	return fileInfoOf(fi), nil
}

func isLoop(err error) bool { return errors.Is(err, syscall.ELOOP) }

// freshStatIn is freshStat beneath root, with no link followed at any level.
func freshStatIn(root *safefs.Root, rel string) (FileInfo, error) {
	f, err := root.Open(rel)
	if err != nil {
		if errors.Is(err, safefs.ErrUnsafe) {
			return FileInfo{}, fmt.Errorf("%s: %w", rel, errNotRegular)
		}
		return FileInfo{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return FileInfo{}, err
	}
	return fileInfoOf(fi), nil
}
