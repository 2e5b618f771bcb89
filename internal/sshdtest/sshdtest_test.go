package sshdtest

import (
	"os"
	"path"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestStartLogsIn proves the helper's promise: the key logs in, the host key
// is pinned, and Dir is writable by User.
func TestStartLogsIn(t *testing.T) {
	s := Start(t)
	key, err := os.ReadFile(s.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := knownhosts.New(s.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hk, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh.Dial(%s): %v", s.Addr, err)
	}
	defer client.Close()
	sc, err := sftp.NewClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	p := path.Join(s.Dir, "hello.txt")
	f, err := sc.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatalf("OpenFile(%s): %v", p, err)
	}
	if _, err := f.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := sc.HasExtension("posix-rename@openssh.com"); !ok {
		t.Errorf("sshd does not advertise posix-rename@openssh.com")
	}
	if want := "sftp://" + s.User + "@" + s.Addr + s.Dir; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
}
