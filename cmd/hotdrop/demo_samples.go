package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"time"
)

// demoFile is a sample file the demo writes, slowly, the way a render farm would.
type demoFile struct {
	request, name string
	chunks        int
	chunkSize     int
}

var demoFiles = []demoFile{
	{"SR-1042", "Wednesday_S01E03_SUB_fr-FR.ttml", 4, 16 << 10},
	{"SR-1043", "Wednesday_S01E03_ME_L.wav", 8, 1 << 20},
	{"SR-1043", "Wednesday_S01E03_ME_R.wav", 8, 1 << 20},
	// Into the File Bin, with a name that fits no request (episode S01E04): held, and the
	// hold names the nearest request and the field that differs.
	{"", "Wednesday_S01E04_SUB_fr-FR.ttml", 2, 4 << 10},
}

// slowWrite writes a file in chunks with pauses, as a render farm does: hotdrop must not send
// it before it has stopped changing for the settle period.
func slowWrite(ctx context.Context, path string, chunks [][]byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, buf := range chunks {
		if _, err := f.Write(buf); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return f.Close()
}

// demoContent is a sample file's content in f.chunks pieces of about f.chunkSize bytes: real
// timed text and real audio, since hotdrop looks inside them before sending.
func demoContent(f demoFile) [][]byte {
	total := f.chunks * f.chunkSize
	var data []byte
	if strings.HasSuffix(f.name, ".wav") {
		data = demoWAV(total)
	} else {
		var b strings.Builder
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" ttp:frameRate="24" ttp:frameRateMultiplier="1000 1001" xml:lang="fr-FR"><body><div>` + "\n")
		for i := 0; b.Len() < total-200; i++ {
			fmt.Fprintf(&b, `<p begin="%s" end="%s">Réplique %d</p>`+"\n", demoTC(i*3), demoTC(i*3+2), i+1)
		}
		b.WriteString("</div></body></tt>\n")
		data = []byte(b.String())
	}
	var out [][]byte
	for len(data) > 0 {
		n := min(len(data), f.chunkSize)
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

func demoTC(sec int) string {
	return fmt.Sprintf("%02d:%02d:%02d.000", sec/3600, sec/60%60, sec%60)
}

// demoWAV is a mono 48 kHz 16-bit PCM WAV of about size bytes: a quiet 440 Hz tone.
func demoWAV(size int) []byte {
	samples := (size - 44) / 2
	b := make([]byte, 44+samples*2)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+samples*2))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], 48000)
	binary.LittleEndian.PutUint32(b[28:], 48000*2)
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(samples*2))
	for i := 0; i < samples; i++ {
		v := int16(3000 * math.Sin(2*math.Pi*440*float64(i)/48000))
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(v))
	}
	return b
}
