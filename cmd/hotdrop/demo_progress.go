package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
)

// lineWriter serializes writes from the demo and the engine's loop to one writer.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// demoProgress prints each state change of the demo's files and requests as it happens.
type demoProgress struct {
	out     io.Writer
	start   time.Time
	mu      sync.Mutex
	last    map[string]string // request id or file path → last printed state
	views   map[string]delivery.RequestView
	changed chan struct{}
}

func newDemoProgress(out io.Writer) *demoProgress {
	return &demoProgress{out: out, start: time.Now(), last: map[string]string{}, views: map[string]delivery.RequestView{},
		changed: make(chan struct{}, 1)}
}

func (p *demoProgress) RequestChanged(v delivery.RequestView) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v.Bin {
		v.ID = "_bin"
	}
	p.views[v.ID] = v
	stamp := fmt.Sprintf("%5.1fs", time.Since(p.start).Seconds())
	for _, f := range v.Files {
		st := string(f.State)
		if f.Reason != "" {
			st += " (" + f.Reason + ": " + f.Message + ")"
		}
		if p.last[f.Path] != st {
			p.last[f.Path] = st
			fmt.Fprintf(p.out, "%s  %-8s %-34s %s\n", stamp, v.ID, f.Name, st)
		}
	}
	if st := string(v.State); !v.Bin && p.last[v.ID] != st {
		p.last[v.ID] = st
		fmt.Fprintf(p.out, "%s  %-8s %-34s request %s\n", stamp, v.ID, "", st)
	}
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

func (p *demoProgress) allDelivered(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	count := 0
	for _, v := range p.views {
		if v.State == delivery.Delivered && !v.Bin {
			count++
		}
	}
	return count == n
}

// binHeld says whether a file in the File Bin is held (the demo shows a hold too).
func (p *demoProgress) binHeld() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.views["_bin"].Files {
		if f.State == delivery.Held {
			return true
		}
	}
	return false
}

func (p *demoProgress) remotePath(local string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.views {
		for _, f := range v.Files {
			if f.Path == local {
				return f.RemotePath
			}
		}
	}
	return ""
}
