//go:build unix

package sshdtest

import (
	"os/exec"
	"syscall"
)

// runAs makes cmd run as uid and gid (the caller is root).
func runAs(cmd *exec.Cmd, uid, gid uint32) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, NoSetGroups: true}}
}
