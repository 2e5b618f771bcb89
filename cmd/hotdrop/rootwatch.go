package main

import (
	"context"
	"os"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// rootStamp is watch.root's identity: a root deleted and made again (a cleanup script, a
// remounted share) is another folder, which the watcher does not watch and in which the drop
// folders do not exist.
type rootStamp struct {
	dev, ino uint64
	ok       bool
}

func stampRoot(p string) rootStamp {
	fi, err := os.Stat(p)
	if err != nil || !fi.IsDir() {
		return rootStamp{}
	}
	return rootStamp{dev: safefs.Device(fi), ino: safefs.Inode(fi), ok: true}
}

// checkRoot notices watch.root going and coming back: while it is gone, nothing can be
// dropped and it says so once; when it is back it makes the drop folders again and watches
// the new folder, without waiting for a SIGHUP.
func (d *daemon) checkRoot(ctx context.Context, seen *rootStamp) {
	now := stampRoot(d.cfg.Watch.Root)
	if now == *seen {
		return
	}
	*seen = now
	if !now.ok {
		d.log.Error("watch.root is gone: nothing can be dropped until it is back; hotdrop makes the drop folders again when it is", "root", d.cfg.Watch.Root)
		return
	}
	d.log.Warn("watch.root is a new folder: making the drop folders again and watching it afresh", "root", d.cfg.Watch.Root)
	if err := d.eng.ForgetRoot(ctx); err != nil {
		return
	}
	d.reload(ctx)
	d.stopWatcher()
	if err := d.startWatcher(ctx); err != nil {
		d.log.Error("watching the new watch.root", "err", err)
	}
}
