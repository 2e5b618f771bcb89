//go:build !linux

package watcher

// detectFS tells network mounts apart only on Linux. macOS polls every tree
// in auto mode anyway (kqueue needs a descriptor per file), and Windows uses
// events.
func detectFS(dir string) (string, bool) { return "", false }

func inotifyMaxUserWatches() (int64, bool) { return 0, false }
