package watcher

import (
	"testing"
	"time"
)

func TestSettler(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	a := FileInfo{Size: 10, ModTime: t0, Inode: 7}
	b := FileInfo{Size: 20, ModTime: t0.Add(time.Second), Inode: 7}

	// step is one thing that happens to file "f"; want* say what must follow.
	type step struct {
		at       float64
		op       string // "observe", "event" (observe with restart), "check" (due+confirm)
		info     FileInfo
		settling bool // observe/event: reports the start of settling
		ready    bool // check: reports Ready
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"ready only after the full period", []step{
			{at: 0, op: "observe", info: a, settling: true},
			{at: 29, op: "check", info: a},
			{at: 29.999, op: "check", info: a},
			{at: 30, op: "check", info: a, ready: true},
			{at: 31, op: "check", info: a},
		}},
		{"change at 20 s restarts the clock", []step{
			{at: 0, op: "observe", info: a, settling: true},
			{at: 20, op: "observe", info: b},
			{at: 30, op: "check", info: b},
			{at: 49, op: "check", info: b},
			{at: 50, op: "check", info: b, ready: true},
		}},
		{"change seen only by the settle check restarts the clock", []step{
			{at: 0, op: "observe", info: a, settling: true},
			{at: 30, op: "check", info: b},
			{at: 59, op: "check", info: b},
			{at: 60, op: "check", info: b, ready: true},
		}},
		{"an event restarts the clock without a visible change", []step{
			{at: 0, op: "observe", info: a, settling: true},
			{at: 25, op: "event", info: a},
			{at: 30, op: "check", info: a},
			{at: 55, op: "check", info: a, ready: true},
		}},
		{"a ready file stays ready when it looks the same", []step{
			{at: 0, op: "observe", info: a, settling: true},
			{at: 30, op: "check", info: a, ready: true},
			{at: 40, op: "event", info: a},
			{at: 40, op: "observe", info: a},
			{at: 80, op: "check", info: a},
		}},
		{"a change after ready settles again and is ready again", []step{
			{at: 0, op: "observe", info: a, settling: true},
			{at: 30, op: "check", info: a, ready: true},
			{at: 40, op: "observe", info: b, settling: true},
			{at: 45, op: "observe", info: b},
			{at: 69, op: "check", info: b},
			{at: 70, op: "check", info: b, ready: true},
		}},
		{"a new inode with the same size and mtime is a change", []step{
			{at: 0, op: "observe", info: a, settling: true},
			{at: 30, op: "check", info: a, ready: true},
			{at: 31, op: "observe", info: FileInfo{Size: a.Size, ModTime: a.ModTime, Inode: 8}, settling: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSettler(30 * time.Second)
			for _, st := range tt.steps {
				now := at(st.at)
				switch st.op {
				case "observe", "event":
					if got := s.observe("f", st.info, now, st.op == "event"); got != st.settling {
						t.Fatalf("%s at %vs: observe = %v, want %v", st.op, st.at, got, st.settling)
					}
				case "check":
					got := false
					for _, k := range s.due(now) {
						if k == "f" && s.confirm(k, st.info, now) {
							got = true
						}
					}
					if got != st.ready {
						t.Fatalf("check at %vs: ready = %v, want %v", st.at, got, st.ready)
					}
				}
			}
		})
	}
}

func TestSettlerForget(t *testing.T) {
	t0 := time.Now()
	s := newSettler(time.Second)
	info := FileInfo{Size: 1, ModTime: t0}
	s.observe("f", info, t0, false)
	got, ok := s.forget("f")
	if !ok || !got.equal(info) {
		t.Fatalf("forget = %v, %v; want %v, true", got, ok, info)
	}
	if _, ok := s.forget("f"); ok {
		t.Fatal("second forget found the file again")
	}
	if due := s.due(t0.Add(time.Hour)); len(due) != 0 {
		t.Fatalf("due after forget = %v, want none", due)
	}
	if !s.observe("f", info, t0, false) {
		t.Fatal("a forgotten file seen again must start settling")
	}
}
