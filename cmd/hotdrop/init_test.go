package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hotdrop/hotdrop/config"
)

const initTestURL = "sftp://partner@ingest.example.com:22/incoming"

// TestInitDecodesToDefaults: the written config, with the one required key it leaves
// commented out filled in, decodes to exactly config.Default().
func TestInitDecodesToDefaults(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "hotdrop.toml")
	var out, errb strings.Builder
	if code := run([]string{"init", "--config", path}, &out, &errb); code != exitOK {
		t.Fatalf("init: exit %d: %s", code, errb.String())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	commented := `# url = "` + initTestURL + `"`
	if !strings.Contains(string(data), commented+"\n") {
		t.Fatalf("init output lacks the commented-out destination.url %q", commented)
	}
	filled := strings.Replace(string(data), commented, `url = "`+initTestURL+`"`, 1)
	got, err := config.Parse(path, []byte(filled))
	if err != nil {
		t.Fatalf("init output does not decode: %v", err)
	}
	want := config.Default()
	want.File = path
	want.Watch.Root = "/srv/deliveries"
	want.Destination.URL = initTestURL
	if !reflect.DeepEqual(got, want) {
		t.Errorf("init output decodes to\n%+v\nwant the defaults\n%+v", got, want)
	}

	// Every key SPEC.md names is there, set or commented out, so a person finds it.
	for _, key := range []string{
		"state_dir", "root", "bin", "folder", "settle", "rescan", "mode", "poll", "ignore",
		"ready_marker", "folder_mode", "# group", "source", "files", "# url", "# token_file",
		"# identity_file", "# password_file", "known_hosts", "path", "concurrency", "bandwidth",
		"checksum", "names", "verify", "after", "manifest", "alert_after", "auto_deliver",
		"# [[destination.schedule]]", "listen", "# tls_cert", "# tls_key", "status_files",
		"# webhook", "# webhook_secret_file", "# [[rule]]", "# [[source_type]]",
	} {
		if !strings.Contains(string(data), "\n"+key+" ") && !strings.Contains(string(data), "\n"+key+"\n") {
			t.Errorf("init output lacks %q", key)
		}
	}
}

// TestInitAsShippedRefusesToRun: left as written, the config makes run exit 78 with a plain
// sentence about destination.url, so the packaged service does not start half-configured.
func TestInitAsShippedRefusesToRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hotdrop.toml")
	if err := os.WriteFile(path, []byte(initConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	code := run([]string{"run", "--config", path}, &out, &errb)
	if code != exitConfig || !strings.Contains(errb.String(), "destination.url is required") {
		t.Errorf("run with the shipped config: exit %d, stderr %q; want exit 78 saying destination.url is required", code, errb.String())
	}
}

func TestInitNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hotdrop.toml")
	if err := os.WriteFile(path, []byte("# mine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	if code := run([]string{"init", "--config", path}, &out, &errb); code != exitFail {
		t.Errorf("init over an existing file: exit %d, want %d", code, exitFail)
	}
	if b, _ := os.ReadFile(path); string(b) != "# mine\n" {
		t.Fatalf("init replaced an existing config without --force")
	}
	if code := run([]string{"init", "--config", path, "--force"}, &out, &errb); code != exitOK {
		t.Fatalf("init --force: exit %d: %s", code, errb.String())
	}
	if b, _ := os.ReadFile(path); string(b) != initConfig {
		t.Errorf("init --force did not write the config")
	}
	out.Reset()
	if code := run([]string{"init", "--config", "-"}, &out, &errb); code != exitOK || out.String() != initConfig {
		t.Errorf("init --config -: exit %d, wrote %d bytes, want the config on stdout", code, out.Len())
	}
}
