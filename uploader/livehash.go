package uploader

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// The server's hash of a large file takes seconds after its last byte (about
// 1.3 s per GiB with openssl here, four times that with sha256sum): time the
// upload waits with the link idle. A live hash reads the partial on the
// server while it is being written, as far as every write below was
// acknowledged, so that at the end only the last stretch is left to hash.
//
// It runs in an exec session of its own, told on its input as many further
// bytes as are whole, a line each, and asked for the digest by a line that
// says 0. Where the server has python3 it reads the partial itself, a MiB at
// a time, into hashlib's sha256 (OpenSSL's); else a shell holds the partial
// open and copies to openssl (or sha256sum) with `head -c N` per line: the
// pipe between them cost the server half as much again as the hash itself
// (1 GiB here: 1.3-1.5 CPU-s through head and a pipe, 0.9 in python3, 0.8
// for openssl reading the file). Whatever goes wrong there — no shell, no
// head, a head that reads ahead, a lost session — only means the usual
// hash after the close decides, so the live hash is an optimisation, never
// the proof by itself when it disagrees.

// liveHashFrom: smaller files are hashed after their close as before; the
// hash of 64 MiB takes some 80 ms.
const liveHashFrom = 64 << 20

// liveHashScript: $1 is the partial, $2 the python3 program (liveHashPy),
// run where a python3 there starts and has hashlib (a broken or ancient one
// leaves the shell way). The first line out says the script runs (a server
// that forces SFTP on every session would never say it).
const liveHashScript = `exec sh -c 'exec 3<"$1" || exit 1; if python3 -I -c "import hashlib, os, sys" >/dev/null 2>&1; then exec python3 -I -c "$2" "$1"; fi; if command -v openssl >/dev/null 2>&1; then h="openssl dgst -sha256 -r"; else h=sha256sum; fi; echo "@hotdrop live"; while read -r n && [ "$n" != 0 ]; do head -c "$n" <&3 || exit 1; done | $h' sh `

// liveHashPy is the live hash in python3: it reads each line's count of
// bytes of the partial (argv[1]) and prints the digest as sha256sum does.
// It runs at nice 10, behind the sshd and sftp-server it follows: where
// they and it share the CPU, the transfer goes first and the hash takes
// what is left (a 2 GiB file on 2 shared cores, loopback: 4.19 s instead
// of 4.28, faster in each of 5 interleaved rounds); the stretch left after
// the last byte is hashed at once, as nothing else runs then.
// No single quote in it: it travels inside the shell's quotes.
const liveHashPy = `import hashlib, os, sys
try:
    os.nice(10)
except OSError:
    pass
f = os.open(sys.argv[1], os.O_RDONLY)
h = hashlib.sha256()
b = memoryview(bytearray(1 << 20))
print("@hotdrop live", flush=True)
for line in sys.stdin:
    n = int(line)
    if n == 0:
        break
    while n > 0:
        k = os.readv(f, [b[:min(n, len(b))]])
        if k <= 0:
            sys.exit(1)
        h.update(b[:k])
        n -= k
print(h.hexdigest() + "  -", flush=True)
`

// liveHashStep: the script is told to read on only once this much more of
// the partial is whole. Every line it is told runs one head process: told
// at each acknowledged write (255 KiB), a 1 GiB file cost the server some
// 4,000 processes: 5.0 CPU-s per GB on loopback instead of 3.2. What is
// left to hash after the last write is at most this much (~10 ms).
const liveHashStep = 16 << 20

// liveHashWait bounds the wait for the script's first line.
const liveHashWait = 10 * time.Second

// liveHash is one partial's hash on the server while it is written.
type liveHash struct {
	next  chan int64    // the newest contiguous acknowledged offset; closed at the end
	ended chan struct{} // closed with next
	once  sync.Once     // closes next and ended
	wg    sync.WaitGroup
	sum   string // the server's digest, once the feeder has finished
	err   error
	stop  func() // closes the session
}

// startLiveHash starts the live hash of p, a partial of size bytes; nil
// when the connection cannot (it refused an exec, or sessions).
func (c *sftpConn) startLiveHash(p string, size int64) *liveHash {
	if c.noLiveHash.Load() || strings.ContainsAny(p, "\r\n") {
		return nil
	}
	sess, err := c.ssh.NewSession()
	if err != nil {
		return nil
	}
	in, err1 := sess.StdinPipe()
	out, err2 := sess.StdoutPipe()
	if err := errors.Join(err1, err2); err != nil {
		sess.Close()
		return nil
	}
	if err := sess.Start(liveHashScript + shellQuote(p) + " " + shellQuote(liveHashPy)); err != nil {
		sess.Close()
		c.noLiveHash.Store(true)
		return nil
	}
	l := &liveHash{next: make(chan int64, 1), ended: make(chan struct{}), stop: func() { sess.Close() }}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer sess.Close()
		l.sum, l.err = l.feed(in, bufio.NewReader(out), size)
		if l.err == nil {
			l.err = sess.Wait()
		}
		if errors.Is(l.err, errNoLiveHash) {
			c.noLiveHash.Store(true)
		}
	}()
	return l
}

var errNoLiveHash = errors.New("the server did not start the live hash")

// feed tells the script how far it may read as the offsets come, then asks
// for the digest and reads it.
func (l *liveHash) feed(in io.WriteCloser, out *bufio.Reader, size int64) (string, error) {
	var told int64
	hello := make(chan error, 1)
	go func() {
		line, err := out.ReadString('\n')
		if err == nil && line != "@hotdrop live\n" {
			err = fmt.Errorf("%w: it said %q", errNoLiveHash, line)
		}
		hello <- err
	}()
	tm := time.NewTimer(liveHashWait)
	defer tm.Stop()
	select {
	case err := <-hello:
		if err != nil {
			return "", err
		}
	case <-tm.C:
		l.stop() // the reader above ends with the session
		<-hello
		return "", errNoLiveHash
	case <-l.ended:
		// The file was sent before the script said a word: a server that
		// runs no commands. The upload does not wait for it.
		l.stop()
		<-hello
		return "", errNoLiveHash
	}
	for off := range l.next {
		if off-told >= liveHashStep {
			if _, err := fmt.Fprintf(in, "%d\n", off-told); err != nil {
				return "", err
			}
			told = off
		}
	}
	if told < size {
		if _, err := fmt.Fprintf(in, "%d\n", size-told); err != nil {
			return "", err
		}
	}
	if _, err := io.WriteString(in, "0\n"); err != nil {
		return "", err
	}
	in.Close()
	line, err := out.ReadString('\n')
	if err != nil {
		return "", err
	}
	field, _, _ := strings.Cut(strings.TrimPrefix(line, `\`), " ")
	if !isHex(field, ChecksumSHA256) {
		return "", fmt.Errorf("the live hash gave %q", strings.TrimSpace(line))
	}
	return strings.ToLower(field), nil
}

// offer hands the newest contiguous acknowledged offset over, dropping an
// older one not yet told: from the pump goroutine, never blocking.
func (l *liveHash) offer(off int64) {
	for {
		select {
		case l.next <- off:
			return
		default:
		}
		select {
		case <-l.next:
		default:
		}
	}
}

// result lets the script hash the rest of the file (every byte of it was
// acknowledged) and returns the server's digest; ctx ending closes the
// session.
func (l *liveHash) result(ctx context.Context) (string, error) {
	l.end()
	stop := context.AfterFunc(ctx, l.stop)
	defer stop()
	l.wg.Wait()
	return l.sum, l.err
}

// abort ends the live hash, whether or not its result was taken: after the
// pump, never while it may still offer.
func (l *liveHash) abort() {
	l.stop()
	l.end()
	l.wg.Wait()
}

func (l *liveHash) end() {
	l.once.Do(func() {
		close(l.next)
		close(l.ended)
	})
}

// startLiveHash starts hashing a large partial on the server while it is
// written (see liveHash), where the file is to be hashed there anyway; nil
// otherwise. The first start bytes are there already.
func (u *Uploader) startLiveHash(t target, partial string, start, size int64, seq bool) *liveHash {
	lc, ok := t.(leasedConn)
	if !ok || seq || size < liveHashFrom || !u.hashFirst(start) || u.noRemoteHash.Load() {
		return nil
	}
	l := lc.startLiveHash(partial, size)
	if l != nil && start > 0 {
		l.offer(start)
	}
	return l
}

// liveVerified reports whether the live hash of sums' file gave the sha256
// sent, so no hash after the close is needed. Any other answer leaves the
// decision to that hash.
func (u *Uploader) liveVerified(ctx context.Context, t target, partial string, sums fileSums) bool {
	if sums.live == nil {
		return false
	}
	got, err := sums.live.result(ctx)
	if err != nil || got != sums.sha {
		u.log.Info("the hash taken on the server while the file was written did not prove it; hashing it again", "remote", partial, "got", got, "err", err)
		return false
	}
	if lc, ok := t.(leasedConn); ok {
		lc.shellProven.Store(true)
	}
	u.log.Debug("verified by the hash the server took while the file was written", "remote", partial)
	return true
}
