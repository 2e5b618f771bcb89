//go:build !unix

package sshdtest

import "os/exec"

// runAs does nothing here: the servers these tests start (sshd, ProFTPD) run on Unix only,
// and the helpers skip before they get here.
func runAs(*exec.Cmd, uint32, uint32) {}
