//go:build unix

package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

// checkWorld writes a config that check passes: an sftp destination whose key and known_hosts
// exist, a state_dir and a watch.root, one request. It returns the folder and the config path.
func checkWorld(t *testing.T, edit func(cfg string) string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"etc/requests.d", "state", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, mode := range map[string]os.FileMode{"etc/id_ed25519": 0o600, "etc/known_hosts": 0o644, "etc/hook.secret": 0o600} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	req := "[[request]]\nid = \"SR-1\"\ntitle = \"Wednesday\"\npackage_id = \"PKG-1\"\nsource_type = \"Subtitle\"\n"
	if err := os.WriteFile(filepath.Join(dir, "etc/requests.d/r.toml"), []byte(req), 0o644); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`state_dir = %q
[watch]
root = %q
[requests]
files = ["requests.d/*.toml"]
[destination]
url = "sftp://partner@ingest.example.com:22/incoming"
identity_file = "id_ed25519"
known_hosts = "known_hosts"
path = "{package_id}/{source_type}/{name}"
[status]
listen = ""
`, filepath.Join(dir, "state"), filepath.Join(dir, "root"))
	if edit != nil {
		text = edit(text)
	}
	cfg := filepath.Join(dir, "etc", "hotdrop.toml")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// TestCheckRefusesWhatCannotWork (issue 14, item 2): check without --connect refuses, with
// the key's file:line:column, every setting that would stop the service or fail every file.
func TestCheckRefusesWhatCannotWork(t *testing.T) {
	_, good := checkWorld(t, nil)
	if code, out, errOut := hotdrop("check", "--config", good); code != exitOK || !strings.Contains(out, "files and folders: ok") {
		t.Fatalf("check of a good config: exit %d:\n%s%s", code, out, errOut)
	}
	for _, tc := range []struct {
		name string
		edit func(string) string
		want string // with the position
	}{
		{"identity_file missing", func(s string) string { return strings.Replace(s, `"id_ed25519"`, `"id_nosuch"`, 1) },
			`hotdrop.toml:8:17: destination.identity_file: DIR/etc/id_nosuch does not exist; create a key with ssh-keygen`},
		{"known_hosts missing", func(s string) string { return strings.Replace(s, `"known_hosts"`, `"kh_nosuch"`, 1) },
			`hotdrop.toml:9:15: destination.known_hosts: DIR/etc/kh_nosuch does not exist; hotdrop trust pins`},
		{"known_hosts default missing", func(s string) string { return strings.Replace(s, "known_hosts = \"known_hosts\"\n", "", 1) },
			`destination.known_hosts: /etc/hotdrop/known_hosts does not exist; hotdrop trust pins the server's host key in it, after you compare its fingerprint (destination.known_hosts is not set, so its default applies)`},
		{"root is /", func(s string) string { return strings.Replace(s, "root = \"", "root = \"/\"\n#", 1) },
			`hotdrop.toml:3:8: watch.root: "/" is the whole file system`},
		{"state_dir cannot be made", func(s string) string { return strings.Replace(s, "/state\"", "/etc/known_hosts/state\"", 1) },
			`hotdrop.toml:1:13: state_dir: DIR/etc/known_hosts/state cannot be created: DIR/etc/known_hosts is not a folder`},
		{"webhook secret missing", func(s string) string {
			return s + "webhook = \"https://hooks.example/x\"\nwebhook_secret_file = \"nosuch.secret\"\n"
		}, `hotdrop.toml:14:23: status.webhook_secret_file: DIR/etc/nosuch.secret does not exist`},
		{"watch.group missing", func(s string) string {
			return strings.Replace(s, "[requests]", "group = \"nosuchgroup\"\n[requests]", 1)
		},
			`hotdrop.toml:4:9: watch.group: there is no group "nosuchgroup" on this machine`},
		{"unknown path field", func(s string) string {
			return strings.Replace(s, "{package_id}/{source_type}/{name}", "{nosuch}/{name}", 1)
		},
			`hotdrop.toml:10:8: destination.path: {nosuch} is not a field of any request`},
		{"path field a request lacks", func(s string) string { return strings.Replace(s, "{package_id}/{source_type}", "{episode}", 1) },
			`hotdrop.toml:10:8: destination.path: {episode} is not a field of any request`},
		{"requests file missing", func(s string) string { return strings.Replace(s, `"requests.d/*.toml"`, `"requests.d/nosuch.toml"`, 1) },
			`hotdrop.toml:5:10: requests.files: DIR/etc/requests.d/nosuch.toml does not exist; expected a requests file of [[request]] tables: correct the path`},
		{"watch.root missing", func(s string) string { return strings.Replace(s, "/root\"", "/noroot\"", 1) },
			`hotdrop.toml:3:8: watch.root: DIR/noroot does not exist (hotdrop makes the drop folders below it, not the folder itself): install -d`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, cfg := checkWorld(t, tc.edit)
			want := strings.ReplaceAll(tc.want, "DIR", dir)
			code, out, errOut := hotdrop("check", "--config", cfg)
			if code != exitConfig || !strings.Contains(errOut, want) {
				t.Errorf("check: exit %d, want 78 saying\n%s\ngot:\n%s%s", code, want, out, errOut)
			}
		})
	}
}

// TestCheckAsServiceUser (issue 14, item 1): root sees every file, the service user does
// not. check --as USER reports what that user cannot read, enter or write, with the command
// that fixes each, and passes once they are done.
func TestCheckAsServiceUser(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no user nobody on this machine: %v", err)
		}
		t.Skip("no user nobody on this machine")
	}
	dir, cfg := checkWorld(t, nil)
	// t.TempDir's folders are private to their owner; open them as /srv and /etc are.
	for _, d := range []string{filepath.Dir(dir), dir, filepath.Join(dir, "state"), filepath.Join(dir, "root")} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	etc := filepath.Join(dir, "etc")
	if err := os.Chmod(etc, 0o750); err != nil { // as the README's install -d -m 0750 made it
		t.Fatal(err)
	}
	code, out, errOut := hotdrop("check", "--as", "nobody", "--config", cfg)
	for _, want := range []string{
		"files and folders: as the user nobody (--as nobody)",
		"the config file " + cfg + " cannot be reached by the user nobody: the folder " + etc + " (",
		"mode 0750) does not let it in: chgrp nogroup " + etc + " && chmod g+x " + etc,
		"state_dir: " + filepath.Join(dir, "state") + " is not writable for the user nobody (",
		"chown nobody " + filepath.Join(dir, "state"),
		"watch.root: " + filepath.Join(dir, "root") + " is not writable for the user nobody",
	} {
		if !strings.Contains(out+errOut, want) {
			t.Errorf("check --as nobody lacks %q", want)
		}
	}
	if code != exitConfig {
		t.Errorf("check --as nobody: exit %d, want 78", code)
	}
	t.Logf("check --as nobody:\n%s%s", out, errOut)
	if code, _, errOut := hotdrop("check", "--as", "no-such-user-here", "--config", cfg); code != exitUsage || !strings.Contains(errOut, `no user "no-such-user-here"`) {
		t.Errorf("check --as an unknown user: exit %d, %s", code, errOut)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: cannot chown to nobody to see check pass")
		return
	}
	uid, gid := atoi(t, nobody.Uid), atoi(t, nobody.Gid)
	for _, p := range []string{"etc", "etc/id_ed25519", "etc/hook.secret", "state", "root"} {
		if err := os.Chown(filepath.Join(dir, p), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	// With the key only: the key's folder is entered, the key itself still root's.
	if err := os.Chown(filepath.Join(dir, "etc/id_ed25519"), 0, 0); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = hotdrop("check", "--as", "nobody", "--config", cfg)
	if want := "destination.identity_file: " + filepath.Join(etc, "id_ed25519") + " cannot be read by the user nobody (owner root:root, mode 0600): chown nobody " +
		filepath.Join(etc, "id_ed25519") + " (a secret stays mode 600"; code != exitConfig || !strings.Contains(errOut, want) {
		t.Errorf("check --as nobody, key root's: exit %d, want 78 saying\n%s\ngot:\n%s%s", code, want, out, errOut)
	}
	if err := os.Chown(filepath.Join(dir, "etc/id_ed25519"), uid, gid); err != nil {
		t.Fatal(err)
	}
	// A journal root made by trying `hotdrop run` by hand.
	db := filepath.Join(dir, "state", "state.db")
	if err := os.WriteFile(db, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = hotdrop("check", "--as", "nobody", "--config", cfg)
	if want := "state_dir: " + db + " is not writable for the user nobody (owner root:root, mode 0644): chown -R nobody " + filepath.Join(dir, "state"); code != exitConfig || !strings.Contains(errOut, want) {
		t.Errorf("check --as nobody, journal root's: exit %d, want 78 saying\n%s\ngot:\n%s%s", code, want, out, errOut)
	}
	if err := os.Chown(db, uid, gid); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := hotdrop("check", "--as", "nobody", "--config", cfg); code != exitOK {
		t.Errorf("check --as nobody after the fixes: exit %d:\n%s%s", code, out, errOut)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRunAndReloadApplyTheChecks (issue 14, items 1-2): run refuses with exit 78 what check
// refuses, and a reload that would break it is refused while the running config stays.
func TestRunAndReloadApplyTheChecks(t *testing.T) {
	runAndReloadRefuse(t, nil, func(s string) string { return strings.Replace(s, `"id_ed25519"`, `"id_nosuch"`, 1) },
		"id_nosuch does not exist", "hotdrop.toml:8:17: destination.identity_file:")
}

// TestCheckDefaultsToTheUnitsUser: run as root, check takes the view of the user an
// installed unit runs the service as, in the unit's supplementary groups.
func TestCheckDefaultsToTheUnitsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the unit's user is the default only for root")
	}
	unit := filepath.Join(t.TempDir(), "hotdrop.service")
	if err := os.WriteFile(unit, []byte("[Service]\nUser=nobody\nSupplementaryGroups=nogroup\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := unitFiles
	unitFiles = []string{filepath.Join(t.TempDir(), "absent.service"), unit}
	defer func() { unitFiles = old }()
	_, cfg := checkWorld(t, nil)
	code, out, _ := hotdrop("check", "--config", cfg)
	if want := "files and folders: as the user nobody (User= of " + unit + ")"; code != exitConfig || !strings.Contains(out, want) {
		t.Errorf("check as root with a unit installed: exit %d, want 78 and %q:\n%s", code, want, out)
	}
}
