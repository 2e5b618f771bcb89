package main

import (
	"net/url"
	"os"
	"os/user"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/uploader"
)

// nextSteps adds to a permanent failure what the person reading it does next: the uploader
// says what the server refused, and only the daemon knows the login, the remote folder and
// the key the studio must have.
type nextSteps struct {
	user, base string // destination.url's login and folder
	identity   string // destination.identity_file
}

func newNextSteps(cfg *config.Config) nextSteps {
	n := nextSteps{identity: cfg.Destination.IdentityFile}
	if u, err := url.Parse(cfg.Destination.URL); err == nil {
		n.base = u.Path
		if u.User != nil {
			n.user = u.User.Username()
		}
	}
	return n
}

// advise appends the next step to te's message for the failures a person must act on.
func (n nextSteps) advise(te *delivery.TransferError, remoteRel string) {
	if te == nil || te.Transient {
		return
	}
	var next string
	switch te.Code {
	case uploader.CodePermissionDenied:
		if strings.HasPrefix(te.Msg, "cannot read local file") {
			// The source side: the message names the file; the fix is its mode.
			who := "(unknown)"
			if u, err := user.Current(); err == nil {
				who = u.Username
			}
			next = "let the user " + who + " (hotdrop runs as it) read the file: chmod g+r with a group " + who +
				" is in, or o+r; a umask of 002 or 022 for whoever writes there keeps new files readable. Then Retry (hotdrop retry)"
			break
		}
		dir := path.Join(n.base, path.Dir(remoteRel))
		next = "ask the studio to let the user " + orUnknown(n.user) + " create files in " + dir +
			" (or change destination.path), then Retry (hotdrop retry)"
	case uploader.CodeAuthFailed:
		next = "check the user name " + orUnknown(n.user) + " in destination.url"
		if n.identity != "" {
			pub := n.identity + ".pub"
			if _, err := os.Stat(pub); err != nil {
				pub = "of " + n.identity + " (ssh-keygen -y -f " + config.ShellQuote(n.identity) + " prints it)"
			}
			next += " and send the studio the public key " + pub
			if fp := keyFingerprint(n.identity); fp != "" {
				next += " (" + fp + ")"
			}
			next += " to install for that user"
		}
		next += ", then Retry (hotdrop retry)"
	case uploader.CodeRemoteExists:
		next = "ask the studio whether that file is theirs to keep; once they remove or rename it, Retry (hotdrop retry) " +
			"delivers this one; if they want it replaced, hotdrop retry --replace (journaled as replace_requested)"
	default:
		return
	}
	te.Msg = strings.TrimSuffix(te.Msg, ".") + ". Next: " + next
}

func orUnknown(s string) string {
	if s == "" {
		return "(none in destination.url)"
	}
	return s
}

// keyFingerprint is the SHA256 fingerprint of the identity's public key, from IDENTITY.pub or
// the private key itself (when it has no passphrase), or "".
func keyFingerprint(identity string) string {
	if data, err := os.ReadFile(identity + ".pub"); err == nil {
		if pub, _, _, _, err := ssh.ParseAuthorizedKey(data); err == nil {
			return pub.Type() + " " + ssh.FingerprintSHA256(pub)
		}
	}
	data, err := os.ReadFile(identity)
	if err != nil {
		return ""
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return ""
	}
	return signer.PublicKey().Type() + " " + ssh.FingerprintSHA256(signer.PublicKey())
}
