package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/hotdrop/hotdrop/config"
)

// checkSecrets refuses secret files that a user other than their owner can read, as OpenSSH
// refuses an unprotected private key: the render-farm users who share this machine must not
// be able to read the SSH key, the password or the tokens. Each problem says the chmod to type.
// A secret that cannot be read at all is left to the code that reads it, which says why.
// Windows has no such mode bits; its ACLs are the administrator's to set.
func checkSecrets(cfg *config.Config) error {
	var errs config.ErrorList
	for _, msg := range secretProblems(cfg) {
		errs = append(errs, &config.Error{Pos: config.Position{File: cfg.File}, Msg: msg})
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// secretProblems says, one sentence each, which secret files others can read.
func secretProblems(cfg *config.Config) []string {
	if runtime.GOOS == "windows" {
		return nil
	}
	var out []string
	for _, s := range []struct{ key, path string }{
		{"destination.identity_file", cfg.Destination.IdentityFile},
		{"destination.password_file", cfg.Destination.PasswordFile},
		{"status.token_file", cfg.Status.TokenFile},
		{"status.webhook_secret_file", cfg.Status.WebhookSecretFile},
		{"requests.token_file", cfg.Requests.TokenFile},
	} {
		if s.path == "" {
			continue
		}
		fi, err := os.Stat(s.path)
		if err != nil || fi.Mode().Perm()&0o044 == 0 {
			continue
		}
		out = append(out, fmt.Sprintf(
			"%s %s is readable by %s (mode %04o); a secret must be readable only by the user hotdrop runs as: chmod 600 %s",
			s.key, s.path, readers(fi.Mode().Perm()), fi.Mode().Perm(), shellWord(s.path)))
	}
	return out
}

func readers(perm os.FileMode) string {
	switch {
	case perm&0o040 != 0 && perm&0o004 != 0:
		return "its group and all users"
	case perm&0o040 != 0:
		return "its group"
	}
	return "all users"
}

// shellWord quotes p for a shell when it needs it, so the chmod can be pasted as it is.
func shellWord(p string) string {
	if p != "" && strings.IndexFunc(p, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '+' || r == ':' || r == '@' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0 {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
