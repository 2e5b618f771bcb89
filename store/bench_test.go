package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/cputime"
)

func processCPU() time.Duration { return cputime.Self() }

// BenchmarkFrameBatches writes the journal the way the daemon does for the frames of a
// sequence: each transaction takes new frames' records (uploading) and their rename intents
// with a full sync, and the frames of the batch before as delivered with their
// file.delivered events (a frame's file.uploading is not journaled). cpu-ns/frame is the
// journal's CPU per frame; compare it with `hotdrop send`'s whole CPU per file (~0.25 ms
// for 4 KiB files, issue 11).
func BenchmarkFrameBatches(b *testing.B) {
	for _, per := range []int{4, 16} {
		b.Run(fmt.Sprintf("frames-per-batch=%d", per), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "state.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			body := []byte(`{"id":"ev_x","type":"file.delivered","at":"2026-12-01T01:00:00Z","request":{"id":"SR-B0","state":"delivering"},"file":{"id":1,"name":"shot.000001.exr","size":4096,"sha256":"` + strings.Repeat("ab", 32) + `","remote_path":"SR-B0/shot.000001.exr","sequence":"shot.[000000-019999].exr"}}`)
			var prev []File
			frame := 0
			cpu0 := processCPU()
			for b.Loop() {
				var recs []File
				var intents []RenameIntent
				var evs []Event
				for _, f := range prev { // delivered
					f.State, f.RenameIntent, f.DeliveredAt = "delivered", false, time.Now()
					recs = append(recs, f)
					evs = append(evs, event(body))
				}
				fresh := len(recs)
				for range per {
					p := fmt.Sprintf("/srv/drop/SR-B0/shot.%06d.exr", frame)
					frame++
					recs = append(recs, File{Path: p, RequestID: "SR-B0", Size: 4096, ModTime: time.Now(), Inode: uint64(frame), State: "uploading", RemotePath: "SR-B0/" + filepath.Base(p)})
					intents = append(intents, RenameIntent{Path: p, Remote: "/in/SR-B0/" + filepath.Base(p), SHA256: strings.Repeat("ab", 32)})
				}
				var ids []int64
				err := s.Write(ctx, true, func(tx *Tx) error {
					var err error
					if ids, err = tx.SaveFiles(recs); err != nil {
						return err
					}
					for _, err := range tx.MarkRenameIntents(intents) {
						if err != nil {
							return err
						}
					}
					_, err = tx.AppendEvents(evs, make([][]string, len(evs)))
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				prev = prev[:0]
				for i := fresh; i < len(recs); i++ {
					f := recs[i]
					f.ID = ids[i]
					prev = append(prev, f)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(frame), "ns/frame")
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(frame), "cpu-ns/frame")
		})
	}
}

// event is an event with an id made as delivery's are: the time in milliseconds, then
// random bits (wholly random ids cost 10-20 % more CPU a frame here).
func event(body []byte) Event {
	var r [12]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		r[i] = byte(ms >> (40 - 8*i))
	}
	rand.Read(r[6:])
	return Event{ID: "ev_" + hex.EncodeToString(r[:]), Type: "file.delivered", RequestID: "SR-B0", At: time.Now(), Body: body}
}
