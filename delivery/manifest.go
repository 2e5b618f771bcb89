package delivery

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// writeManifest writes m to w exactly as json.MarshalIndent(m, "", "  ") makes it, a file at a
// time: the manifest of 100,000 frames is 20 MB of JSON, and making it in memory (the compact
// form, then the indented copy, each grown by doubling) was the daemon's largest allocation,
// at the very moment the request is delivered (issue 11).
func writeManifest(w io.Writer, m *Manifest) error {
	head := *m
	head.Files = nil
	b, err := json.MarshalIndent(head, "", "  ")
	if err != nil {
		return err
	}
	// Files is the one field at the top level written as "files" (a key inside metadata is
	// indented further, and a JSON string holds no raw newline): the list goes in its place.
	const gap = "\n  \"files\": null"
	at := bytes.Index(b, []byte(gap))
	if at < 0 {
		return errors.New("manifest: no place for the files in its JSON")
	}
	at += len(gap) - len("null")
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(b[:at])
	switch {
	case m.Files == nil:
		bw.WriteString("null")
	case len(m.Files) == 0:
		bw.WriteString("[]")
	default:
		// The Encoder reuses its buffers: a file costs no garbage of its own.
		var one bytes.Buffer
		enc := json.NewEncoder(&one)
		enc.SetIndent("    ", "  ")
		bw.WriteString("[\n")
		for i := range m.Files {
			one.Reset()
			if err := enc.Encode(&m.Files[i]); err != nil {
				return err
			}
			bw.WriteString("    ")
			bw.Write(bytes.TrimSuffix(one.Bytes(), []byte("\n")))
			if i < len(m.Files)-1 {
				bw.WriteByte(',')
			}
			bw.WriteByte('\n')
		}
		bw.WriteString("  ]")
	}
	bw.Write(b[at+len("null"):])
	return bw.Flush()
}
