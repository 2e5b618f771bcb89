package main

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// examples are the lines `COMMAND --help` ends with: one way to use it that works as typed.
var examples = map[string][]string{
	"run":     {"hotdrop run --config /etc/hotdrop/hotdrop.toml --log-format json"},
	"demo":    {"hotdrop demo", "hotdrop demo --keep --dir /tmp/hotdrop-demo   # keeps running: drop your own files"},
	"init":    {"hotdrop init --config /etc/hotdrop/hotdrop.toml", "hotdrop init --config -   # print it"},
	"check":   {"hotdrop check --as hotdrop --config /etc/hotdrop/hotdrop.toml", "hotdrop check --connect   # also log in and write a test file"},
	"trust":   {"hotdrop trust --config /etc/hotdrop/hotdrop.toml"},
	"explain": {"hotdrop explain /srv/deliveries/_bin/Wednesday_S01E03_SUB_fr-FR.ttml", "hotdrop explain --json /srv/deliveries/_bin/*"},
	"status":  {"hotdrop status", "hotdrop status SR-1042 --json", "hotdrop status --wide"},
	"retry":   {"hotdrop retry SR-1042", "hotdrop retry --replace SR-1042   # files held remote_exists replace the server's (ask the studio first)", "hotdrop retry '/srv/deliveries/Wednesday/Subtitle fr-FR [SR-1042]/ep103.ttml'"},
	"deliver": {"hotdrop deliver SR-1042"},
	"send":    {"hotdrop send ./reel1.mxf ./stills --to adhoc/2026-11-30", "hotdrop send --replace ./fixed.ttml --to adhoc"},
	"service": {"hotdrop service install --config /etc/hotdrop/hotdrop.toml", "hotdrop service start", "hotdrop service install --user --config ~/.config/hotdrop/hotdrop.toml"},
	"version": {"hotdrop version"},
}

// printUsage writes a command's usage: its synopsis, every flag as --flag (the synopsis's
// spelling; Go's flag package prints -flag), and its examples.
func printUsage(w io.Writer, fs *flag.FlagSet, synopsis string) {
	fmt.Fprintf(w, "Usage: hotdrop %s\n", synopsis)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if first {
			fmt.Fprintln(w, "\nFlags:")
			first = false
		}
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintln(w, line)
		if !isZeroDefault(f) {
			usage += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "      %s\n", strings.ReplaceAll(usage, "\n", "\n      "))
	})
	cmd, _, _ := strings.Cut(fs.Name(), " ")
	if ex := examples[cmd]; len(ex) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range ex {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// isZeroDefault says whether a flag's default is its type's zero value (not worth printing).
func isZeroDefault(f *flag.Flag) bool {
	t := reflect.TypeOf(f.Value)
	var z reflect.Value
	if t.Kind() == reflect.Pointer {
		z = reflect.New(t.Elem())
	} else {
		z = reflect.Zero(t)
	}
	v, ok := z.Interface().(flag.Value)
	return ok && f.DefValue == v.String()
}
