//go:build !unix

package watcher

import "io/fs"

func ownerOf(fs.FileInfo) (owner, group string, ok bool) { return "", "", false }
