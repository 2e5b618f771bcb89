package sshdtest

import (
	"os/user"
	"testing"
)

// Account returns the unprivileged account tests run things as when they run as root
// (TestUser, created when missing), else the current user. Root reads and enters every
// folder, so tests of what the kernel refuses run their part as this account.
func Account(t testing.TB) (*user.User, error) { return loginUser(t) }
