package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
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
