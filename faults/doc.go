// Package faults is hotdrop's fault suite: the real daemon binary, run as an
// operator runs it, against a real OpenSSH sshd behind a TCP proxy that counts
// bytes and cuts, freezes or redirects connections. Each scenario (SIGKILLs,
// connection cuts, an outage, a full disk, a read-only folder, a changed host
// key, SIGTERM, two daemons on one state_dir, a state_dir removed while
// running) prints one FAULT line with its figures and fails when a goal is
// missed.
//
// The tests are behind the "faults" build tag: they take minutes, need root
// for the tmpfs and the unprivileged test user, and are run by `make faults`
// (reduced sizes with HOTDROP_FAULTS=reduced or -short, as CI does). This file
// exists so the package builds without the tag; it holds no code.
package faults
