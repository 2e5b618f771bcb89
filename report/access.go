package report

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// sessionCookie is set by the login form; its value is derived from the token, never the
// token itself: "EXPIRY.MAC", the Unix second it ends and a MAC of that with the token.
const sessionCookie = "hotdrop_session"

// sessionLife is how long a session lasts from its login or its last renewal: one in use is
// renewed once it is past half of it (cookieOK), so an open dashboard stays signed in, and a
// copied cookie stops working a week after it was last renewed. Sign out ends it in that
// browser; changing the token ends every session at once.
const sessionLife = 7 * 24 * time.Hour

// sessionHeader on a response tells the dashboard it is signed in by its session cookie, which
// its script cannot read (HttpOnly), so that it shows "Sign out".
const sessionHeader = "X-Hotdrop-Session"

// Handler is the whole site with its checks: Host, token, same-origin POSTs.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host := hostName(r.Host); !s.hosts[host] {
			http.Error(w, fmt.Sprintf("Forbidden: the Host %q is not one hotdrop answers to (a guard against DNS rebinding); expected the listen address or a name in status.hosts: use the listen address, or add %q to status.hosts under [status] in hotdrop's config and reload", host, host), http.StatusForbidden)
			return
		}
		// A token offered (a session cookie is not: it is a MAC of the token, no cheaper to
		// guess than the token, and a dashboard left open after the token changed sends the
		// old one with every request).
		presented := s.o.Token != "" && (r.Header.Get("Authorization") != "" || r.Method == http.MethodPost && r.URL.Path == "/login")
		addr := clientAddr(r)
		if presented && !s.guesses.mayTry(addr) {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "Too Many Requests: too many wrong tokens from this address; wait a few seconds and try again with the token from status.token_file", http.StatusTooManyRequests)
			return
		}
		bearer := s.bearerOK(r)
		authed := bearer || s.cookieOK(w, r)
		if presented && !bearer && r.URL.Path != "/login" {
			s.wrongToken(addr)
		}
		if !s.loopback && !authed && r.URL.Path != "/login" && r.URL.Path != "/logout" && r.URL.Path != "/app.css" {
			if r.Method == http.MethodGet && (r.URL.Path == "/" || strings.Contains(r.Header.Get("Accept"), "text/html")) {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="hotdrop"`)
			http.Error(w, "Unauthorized: send the token from status.token_file as Authorization: Bearer", http.StatusUnauthorized)
			return
		}
		if s.o.Token != "" && !authed && r.Method == http.MethodPost && r.URL.Path != "/login" && r.URL.Path != "/logout" {
			// Loopback is not authentication: any local user can reach it. With a token
			// configured, a change of state needs it (or the session of a dashboard that
			// logged in with it).
			w.Header().Set("WWW-Authenticate", `Bearer realm="hotdrop"`)
			writeJSON(w, http.StatusUnauthorized, apiError{"this hotdrop wants the token from status.token_file for retry, replace and deliver: log in at /login, or send it as Authorization: Bearer"})
			return
		}
		if !bearer {
			if err := s.cop.Check(r); err != nil {
				http.Error(w, "Forbidden: cross-origin request refused; POST from the dashboard itself or send the token", http.StatusForbidden)
				return
			}
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		s.mux.ServeHTTP(w, r)
	})
}

// hostName is the name in a Host header as the allowed names are kept: no port, no
// brackets, no trailing dot, lower case.
func hostName(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
}

func (s *Server) bearerOK(r *http.Request) bool {
	if s.o.Token == "" {
		return false
	}
	a := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(a, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.o.Token)) == 1
}

// session is the cookie value of a session that ends at expiry (Unix seconds).
func (s *Server) session(expiry int64) string {
	m := hmac.New(sha256.New, []byte(s.o.Token))
	m.Write([]byte("hotdrop dashboard session\x00"))
	m.Write([]byte(strconv.FormatInt(expiry, 10)))
	return strconv.FormatInt(expiry, 10) + "." + hex.EncodeToString(m.Sum(nil))
}

// cookieOK reports whether r carries a session cookie made with the token that has not ended;
// one past half its life is renewed on w, and the dashboard is told it has a session.
func (s *Server) cookieOK(w http.ResponseWriter, r *http.Request) bool {
	if s.o.Token == "" {
		return false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	at, _, ok := strings.Cut(c.Value, ".")
	expiry, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.session(expiry))) != 1 {
		return false
	}
	left := time.Unix(expiry, 0).Sub(s.o.Clock.Now())
	if left <= 0 {
		return false
	}
	if left < sessionLife/2 {
		s.setSession(w)
	}
	w.Header().Set(sessionHeader, "cookie")
	return true
}

// setSession gives w a new session cookie, good for sessionLife.
func (s *Server) setSession(w http.ResponseWriter) {
	expiry := s.o.Clock.Now().Add(sessionLife).Unix()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.session(expiry), Path: "/", HttpOnly: true,
		Secure: s.o.TLSCert != "", SameSite: http.SameSiteStrictMode, MaxAge: int(sessionLife / time.Second)})
}

const loginPage = `<!doctype html><html lang="en"><meta charset="utf-8"><title>hotdrop: sign in</title>
<link rel="stylesheet" href="/app.css"><body class="login"><form method="post" action="/login">
<h1>hotdrop</h1><p>%s</p><label>Token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<button type="submit">Sign in</button></form></body></html>`

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, loginPage, "Enter the token from status.token_file.")
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	tok := r.PostFormValue("token")
	if s.o.Token == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.o.Token)) != 1 {
		if s.o.Token != "" {
			s.wrongToken(clientAddr(r))
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, loginPage, "That token is not the one in status.token_file.")
		return
	}
	s.setSession(w)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the session in this browser: its cookie is cleared. (The cookie holds no state
// on the server; a copy of it taken earlier lasts until its expiry or a new token.)
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Del("Set-Cookie") // a renewal cookieOK gave this request
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		Secure: s.o.TLSCert != "", SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.Header().Del(sessionHeader)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// wrongToken counts a wrong token from addr (guesses.go), and says so in the log at most
// once a minute; the token itself is never logged.
func (s *Server) wrongToken(addr string) {
	if s.guesses.wrong(addr) {
		s.o.Logger.Warn("a wrong status token was sent; wrong ones are throttled per address", "from", addr)
	}
}

// IsLoopbackHost reports whether host (a name or an address, brackets allowed) is this
// machine: localhost or a loopback address.
func IsLoopbackHost(host string) bool { return isLoopback(host) }

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (s *Server) allowHosts(host string) {
	add := func(h string) {
		if h = strings.ToLower(strings.Trim(h, "[]")); h != "" {
			s.hosts[h] = true
		}
	}
	for _, h := range s.o.Hosts {
		add(h)
	}
	add(host)
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if s.loopback || host == "" || ip != nil && ip.IsUnspecified() {
		add("localhost")
		add("127.0.0.1")
		add("::1")
	}
	if host == "" || ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			add(name)
			add(strings.SplitN(name, ".", 2)[0])
		}
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					add(n.IP.String())
				}
			}
		}
	}
}
