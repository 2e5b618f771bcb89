package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// writeManifest streams what json.MarshalIndent makes; receivers parse the manifest, and a
// byte-for-byte match keeps every one of them working.
func TestWriteManifestIsMarshalIndent(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	many := make([]ManifestFile, 3)
	for i := range many {
		many[i] = ManifestFile{Name: fmt.Sprintf("shot_010.%04d.exr", 1001+i), Size: int64(4096 + i), SHA256: "ab12", RemotePath: "SR-1/x"}
	}
	many[1].Media = map[string]string{"resolution": "4096x2160", "frame_rate": "24"}
	many[2].Metadata = map[string]string{"files": "null", "note": "a <b> & \"c\"\n"}
	cases := map[string]Manifest{
		"nil files":   {Request: "SR-1", DeliveredAt: at, Generator: "hotdrop"},
		"empty files": {Request: "SR-1", Files: []ManifestFile{}, DeliveredAt: at, Generator: "hotdrop"},
		"one file":    {Request: "SR-1", Metadata: map[string]string{"title": "Shot"}, Files: many[:1], DeliveredAt: at, Generator: "hotdrop"},
		"everything": {Request: "SR-1", Metadata: map[string]string{"files": "3", "title": "\"files\": null"}, Files: many,
			Sequences:   []ManifestSequence{{Name: "shot_010.[1001-1003].exr", First: 1001, Last: 1003, Frames: 3, Size: 12291}},
			DeliveredAt: at, Generator: "hotdrop",
			Compositions: []Composition{{}}},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := json.MarshalIndent(m, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if err := writeManifest(&got, &m); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("writeManifest =\n%s\nwant (MarshalIndent)\n%s", got.Bytes(), want)
			}
		})
	}
}

// TestManifestKeyStreams: a manifest's key (what it says, but when) is hashed as the manifest
// is written, a file at a time, not from a copy of it whole in memory: at 100,000 files that
// copy was the daemon's peak. And the key still tells manifests apart by what they say only.
func TestManifestKeyStreams(t *testing.T) {
	m := Manifest{Request: "SR-1", Generator: "hotdrop", DeliveredAt: time.Unix(1e9, 0).UTC(), Files: make([]ManifestFile, 20000)}
	for i := range m.Files {
		m.Files[i] = ManifestFile{Name: fmt.Sprintf("shot_010.%06d.exr", i), Size: 4096,
			SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", RemotePath: fmt.Sprintf("SR-1/shot_010.%06d.exr", i)}
	}
	var whole bytes.Buffer
	if err := writeManifest(&whole, &m); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	key := manifestKey(m)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(whole.Len()/4) && !raceEnabled {
		t.Errorf("the key of a manifest of %d bytes allocated %d bytes; want a file at a time", whole.Len(), got)
	}
	later := m
	later.DeliveredAt = m.DeliveredAt.Add(time.Hour)
	if manifestKey(later) != key {
		t.Error("the same manifest at another time has another key")
	}
	other := m
	other.Files = append([]ManifestFile(nil), m.Files...)
	other.Files[7].Size++
	if key == "" || manifestKey(other) == key {
		t.Error("a manifest saying another size has the same key")
	}
}
