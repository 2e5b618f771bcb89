package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `hotdrop demo` as a new user would: the README's first command must work.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := runDemo(ctx, t.TempDir(), false, &out, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"request delivered", "identical to the source", "SR-1043.hotdrop.json  manifest"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "DIFFERENT") || strings.Contains(out.String(), "not written yet") {
		t.Errorf("demo output reports a problem:\n%s", out.String())
	}
}
