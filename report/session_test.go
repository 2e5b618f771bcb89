package report

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
)

// A session from the login form lasts a week from its login or its last renewal: one in use
// past half of that is renewed, one unused for a week is refused, one made with another token
// or with its expiry changed is refused, and Sign out clears it.
func TestSessionExpiresRenewsAndSignsOut(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	t.Cleanup(func() { st.Close() })
	m := NewMetrics()
	h := NewHub(HubOptions{Store: st, Metrics: m, Logger: quietLogger()})
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	s, err := NewServer(ServerOptions{Listen: "0.0.0.0:8470", Token: "a-status-token-of-some-length", Hub: h, Metrics: m,
		Store: st, Control: &fakeControl{}, Logger: quietLogger(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	api := ts.URL + "/api/requests"

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(ts.URL+"/login", url.Values{"token": {"a-status-token-of-some-length"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	session := sessionOf(resp)
	if session == nil || session.MaxAge != int(sessionLife/time.Second) {
		t.Fatalf("login cookie = %+v, want a session for %s", session, sessionLife)
	}
	get := func(c *http.Cookie) *http.Response {
		t.Helper()
		r, _ := do(t, "GET", api, map[string]string{"Cookie": c.Name + "=" + c.Value})
		return r
	}
	if r := get(session); r.StatusCode != 200 || r.Header.Get(sessionHeader) != "cookie" || sessionOf(r) != nil {
		t.Fatalf("fresh session: %d, %s %q, renewed %v; want 200, said, not renewed", r.StatusCode, sessionHeader, r.Header.Get(sessionHeader), sessionOf(r))
	}

	// Past half its life it is renewed, and the renewed one outlives the first.
	clk.Advance(4 * 24 * time.Hour)
	r := get(session)
	renewed := sessionOf(r)
	if r.StatusCode != 200 || renewed == nil || renewed.Value == session.Value {
		t.Fatalf("session 4 days old: %d, renewed %+v; want 200 and a new cookie", r.StatusCode, renewed)
	}
	clk.Advance(4 * 24 * time.Hour)
	if r := get(session); r.StatusCode != 401 {
		t.Errorf("session 8 days after its login, never renewed: %d, want 401", r.StatusCode)
	}
	if r := get(renewed); r.StatusCode != 200 {
		t.Errorf("session renewed 4 days ago: %d, want 200", r.StatusCode)
	}

	// Another token's session, or an expiry moved on by hand, is not one.
	other := &Server{o: ServerOptions{Token: "another-status-token-entirely"}}
	forged := []string{
		other.session(clk.Now().Add(time.Hour).Unix()),
		"99999999999" + renewed.Value[len("99999999999"):],
		"garbage", "", ".", "1.",
	}
	for _, v := range forged {
		if r := get(&http.Cookie{Name: sessionCookie, Value: v}); r.StatusCode != 401 {
			t.Errorf("session cookie %q: %d, want 401", v, r.StatusCode)
		}
	}

	// Sign out clears the cookie and goes back to the login form.
	r, _ = do(t, "POST", ts.URL+"/logout", map[string]string{"Cookie": renewed.Name + "=" + renewed.Value, "Origin": ts.URL})
	if c := sessionOf(r); r.StatusCode != 303 || r.Header.Get("Location") != "/login" || c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Errorf("POST /logout: %d to %q, cookie %+v; want 303 to /login clearing the session", r.StatusCode, r.Header.Get("Location"), c)
	}
}

func sessionOf(r *http.Response) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}
