package uploader

import (
	"bufio"
	"context"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// hashScript runs in one long-lived exec session and hashes file after file:
// it reads the tool's name and a path, a line each, hashes the file, and ends
// its answer with a line "@hotdrop STATUS". A new exec session per file costs
// a channel, an exec request and a shell start; this costs one round trip.
// Where the server has a python3 that starts and has hashlib, one python3
// process (hashSessionPy) hashes every file itself; else the shell runs the tool, one process per file
// (2,000 files of 4 KiB with checksum files: the server's CPU per file
// 1.7-1.9 ms that way, 1.0-1.1 in python3). Single quotes only around the
// script, so it passes through any login shell to sh. The tool
// opensslSHA256 stands for `openssl dgst -sha256 -r`, whose output starts
// with the hex digest as sha256sum's does.
const hashScript = `exec sh -c 'if python3 -I -c "import hashlib, sys" >/dev/null 2>&1; then exec python3 -I -c "$1"; fi; while IFS= read -r t && IFS= read -r p; do case "$t" in ` + opensslSHA256 + `) openssl dgst -sha256 -r -- "$p" 2>&1;; *) "$t" -- "$p" 2>&1;; esac; printf "\n@hotdrop %s\n" "$?"; done' sh `

// hashSessionPy is hashScript in python3: the same questions and answers, the
// hash taken by hashlib (OpenSSL's, with the CPU's SHA instructions) in this
// one process. An unknown tool gets status 127, as from the shell; a file it
// cannot hash (missing, a folder, md5 refused in FIPS mode) status 1, and the
// session goes on. No single quote in it: it travels inside the shell's quotes.
const hashSessionPy = `import hashlib, sys
algos = {b"sha256sum": "sha256", b"` + opensslSHA256 + `": "sha256", b"md5sum": "md5"}
rd, wr = sys.stdin.buffer, sys.stdout.buffer
while True:
    t, p = rd.readline(), rd.readline()
    if not p.endswith(b"\n"):
        break
    t, p = t[:-1], p[:-1]
    if t not in algos:
        wr.write(t + b": unknown tool\n\n@hotdrop 127\n")
        wr.flush()
        continue
    h = hashlib.new(algos[t])
    try:
        with open(p, "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        wr.write(h.hexdigest().encode() + b"  " + p + b"\n\n@hotdrop 0\n")
    except Exception as e:
        wr.write(t + b": " + str(e).encode() + b"\n\n@hotdrop 1\n")
    wr.flush()
`

// opensslSHA256 names OpenSSL's sha256 in hashScript.
const opensslSHA256 = "openssl-sha256"

// maxHashSessions bounds the hashing sessions of one connection (OpenSSH
// allows ten channels per connection, and the SFTP session is one of them);
// uploads that find them all busy use a one-shot session.
const maxHashSessions = 4

// hashSessions is a connection's pool of idle hashing sessions.
type hashSessions struct {
	mu    sync.Mutex
	idle  []*hashSession
	count int
}

type hashSession struct {
	sess *ssh.Session
	in   io.WriteCloser
	out  *bufio.Reader
}

// sum hashes p with tool in a pooled session. ok is false when it could not
// give a checksum for any reason (no session to be had, the session died, the
// command failed): the caller then uses a one-shot session, which says why in
// words. Only a connection on which a hash command already ran is asked, so a
// server that runs no commands (ForceCommand internal-sftp would read the
// script as SFTP packets and wait) never gets here.
func (h *hashSessions) sum(ctx context.Context, client *ssh.Client, p, tool string) (sum string, ok bool) {
	if tool == "" || strings.ContainsAny(p, "\r\n") {
		return "", false
	}
	hs := h.get(client)
	if hs == nil {
		return "", false
	}
	good := false
	defer func() { h.put(hs, good) }()
	stop := context.AfterFunc(ctx, func() { hs.sess.Close() })
	defer stop()
	if _, err := io.WriteString(hs.in, tool+"\n"+p+"\n"); err != nil {
		return "", false
	}
	// The tool's output, then the status line. A path never holds a newline
	// (refused above), so no output line can pass for the status line.
	var out, status string
	for {
		line, err := hs.out.ReadString('\n')
		if err != nil || ctx.Err() != nil {
			return "", false
		}
		if st, ok := strings.CutPrefix(line, "@hotdrop "); ok {
			status = strings.TrimSpace(st)
			break
		}
		if out == "" {
			out = line
		}
	}
	good = true // the session answered in step, whatever the command said
	field, _, _ := strings.Cut(strings.TrimPrefix(out, `\`), " ")
	kind := ChecksumSHA256
	if tool == hashTools[ChecksumMD5] {
		kind = ChecksumMD5
	}
	if status != "0" || !isHex(field, kind) {
		return "", false
	}
	return strings.ToLower(field), true
}

func (h *hashSessions) get(client *ssh.Client) *hashSession {
	h.mu.Lock()
	if n := len(h.idle); n > 0 {
		hs := h.idle[n-1]
		h.idle = h.idle[:n-1]
		h.mu.Unlock()
		return hs
	}
	if h.count >= maxHashSessions {
		h.mu.Unlock()
		return nil
	}
	h.count++
	h.mu.Unlock()
	hs, err := startHashSession(client)
	if err != nil {
		h.mu.Lock()
		h.count--
		h.mu.Unlock()
		return nil
	}
	return hs
}

// put gives a session back, or closes it when it is out of step.
func (h *hashSessions) put(hs *hashSession, good bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if good {
		h.idle = append(h.idle, hs)
		return
	}
	h.count--
	hs.sess.Close()
}

func startHashSession(client *ssh.Client) (*hashSession, error) {
	sess, err := client.NewSession()
	if err != nil {
		return nil, err
	}
	in, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	if err := sess.Start(hashScript + shellQuote(hashSessionPy)); err != nil {
		sess.Close()
		return nil, err
	}
	return &hashSession{sess: sess, in: in, out: bufio.NewReaderSize(out, 4096)}, nil
}
