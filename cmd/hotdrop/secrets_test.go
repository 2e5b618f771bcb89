//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Secrets that group or others can read are refused by check and run, each with the chmod to
// type (issue 10); one readable only by its owner passes.
func TestSecretsReadableByOthersRefused(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"id key": 0o644, "pw": 0o640, "hook.secret": 0o600} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	for _, d := range []string{"root", "out", "requests.d"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "hotdrop.toml")
	if err := os.WriteFile(cfg, []byte(`state_dir = "state"
[watch]
root = "root"
[requests]
files = ["requests.d/*.toml"]
[destination]
url = "file://`+filepath.Join(dir, "out")+`"
identity_file = "id key"
password_file = "pw"
[status]
listen = ""
webhook = "https://hooks.example/x"
webhook_secret_file = "hook.secret"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"hotdrop.toml:8:17: destination.identity_file: " + filepath.Join(dir, "id key") + " is readable by its group and all users (mode 0644)",
		"chmod 600 '" + filepath.Join(dir, "id key") + "'",
		"hotdrop.toml:9:17: destination.password_file: " + filepath.Join(dir, "pw") + " is readable by its group (mode 0640)",
		"chmod 600 " + filepath.Join(dir, "pw"),
	}
	for _, cmd := range []struct {
		name string
		code int
	}{{"check", exitConfig}, {"run", exitConfig}} {
		var stdout, stderr bytes.Buffer
		var code int
		if cmd.name == "check" {
			code = run([]string{cmd.name, "--config", cfg}, &stdout, &stderr)
		} else {
			// What `hotdrop run` calls, with its context already ended: a daemon that does
			// not refuse returns at once instead of running on.
			c, err := loadConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			code = exitCode(runDaemon(ctx, c, newLogger(&stderr), daemonHooks{}), &stderr)
		}
		out := stdout.String() + stderr.String()
		if code != cmd.code {
			t.Errorf("hotdrop %s exit %d, want %d; output:\n%s", cmd.name, code, cmd.code, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("hotdrop %s output lacks %q:\n%s", cmd.name, w, out)
			}
		}
		if strings.Contains(out, "hook.secret") {
			t.Errorf("hotdrop %s complains about a secret only its owner can read:\n%s", cmd.name, out)
		}
	}
}
