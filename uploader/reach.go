package uploader

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// reachTimeout bounds one reachability probe: it is a hint, asked often.
const reachTimeout = 3 * time.Second

// Reachable tells cheaply whether the destination answers at all: for SFTP a TCP connect and
// the server's SSH greeting, without a login (no key exchange, no session, nothing an
// ingest server would count as a login attempt); for file:// that the folder can be looked
// at. A caller waiting out a retry backoff probes with it to notice a server's return
// within seconds. Errors are transient *Error with the network's words.
func (u *Uploader) Reachable(ctx context.Context) error {
	if u.local {
		if _, err := os.Stat(u.base); err != nil {
			return &Error{Code: CodeTransient, Transient: true, Msg: fmt.Sprintf("destination folder %s cannot be reached", u.base), Err: err}
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, min(u.dialTimeout, reachTimeout))
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return &Error{Code: CodeTransient, Transient: true, Msg: fmt.Sprintf("cannot reach %s", u.addr), Err: err}
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetReadDeadline(dl)
	}
	// RFC 4253 4.2: the server may send other lines before its version line.
	r := bufio.NewReaderSize(c, 256)
	for range 8 {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, "SSH-") {
			return nil
		}
		if err != nil {
			return &Error{Code: CodeTransient, Transient: true, Msg: fmt.Sprintf("%s accepts connections but sends no SSH greeting", u.addr), Err: err}
		}
	}
	return &Error{Code: CodeTransient, Transient: true, Msg: fmt.Sprintf("%s accepts connections but sends no SSH greeting", u.addr)}
}
