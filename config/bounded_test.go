package config

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// hostileTOML are small documents shaped to make BurntSushi/toml spend gigabytes (issue 9).
var hostileTOML = []string{
	"state_dir = \"s\"\nx = " + strings.Repeat("{b = ", 10_000) + "1" + strings.Repeat("}", 10_000) + "\n",
	"[[request]]\nid = \"SR-1\"\n" + strings.Repeat("a.", 20_000) + "b = 1\n",
	"[" + strings.Repeat("a.", 20_000) + "b]\nc = 1\n",
	strings.Repeat(strings.Repeat("a.", 15)+"k = 1\n", 1_000) + "x = " + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + "\n",
}

// TestHostileFilesRefusedCheaply: a config or requests file shaped to explode the decoder is
// a config error at a position (exit 78), found within a second with little memory.
func TestHostileFilesRefusedCheaply(t *testing.T) {
	for i, doc := range hostileTOML {
		for _, parse := range []struct {
			name string
			f    func() error
		}{
			{"Parse", func() error { _, err := Parse("h.toml", []byte(doc)); return err }},
			{"ParseRequests", func() error { _, err := ParseRequests("h.toml", []byte(doc)); return err }},
		} {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			err := parse.f()
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			list, ok := err.(ErrorList)
			if !ok || len(list) != 1 || list[0].Pos.Line < 1 || !strings.Contains(list[0].Msg, "levels deep") {
				t.Errorf("%s(hostile %d) = %v, want one positioned error about depth", parse.name, i, err)
			}
			if took > time.Second {
				t.Errorf("%s(hostile %d) took %s, want well under a second", parse.name, i, took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 50<<20 {
				t.Errorf("%s(hostile %d) allocated %d MB, want under 50 MB", parse.name, i, alloc>>20)
			}
		}
	}
}
