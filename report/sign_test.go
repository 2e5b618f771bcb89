package report

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hotdrop/hotdrop/store"
)

// TestSignCoversTimestamp: the signature is HMAC-SHA256 over "TIMESTAMP.BODY", as SPEC
// says, so a receiver can refuse a replay of an old delivery.
func TestSignCoversTimestamp(t *testing.T) {
	secret, body := []byte("hook-secret"), []byte(`{"id":"ev_1"}`)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(`1700000000.{"id":"ev_1"}`))
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if got := Sign(secret, 1700000000, body); got != want {
		t.Errorf("Sign(secret, 1700000000, body) = %s, want %s", got, want)
	}
	if Sign(secret, 1700000001, body) == want {
		t.Error("a later timestamp gives the same signature: a replay could not be told apart")
	}
}

// TestNoRedirectFromHTTPSToHTTP: a webhook or tracker on https that redirects to http is
// not followed, so neither the event nor the tracker token crosses the network unencrypted.
func TestNoRedirectFromHTTPSToHTTP(t *testing.T) {
	var plain atomic.Int32
	clear := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plain.Add(1)
	}))
	defer clear.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, clear.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer tls.Close()

	st := openStore(t, t.TempDir()+"/state.db")
	defer st.Close()
	s := &Sender{Store: st, Target: TargetWebhook, Client: tls.Client(), Token: "tracker-token",
		URL: func(store.Event) string { return tls.URL + "/hook" }, Logger: quietLogger()}
	s.defaults()
	err := s.send(context.Background(), store.Event{ID: "ev_1", Type: "file.delivered", Body: []byte(`{}`)})
	if err == nil || !strings.Contains(err.Error(), "refusing a redirect from https to http") {
		t.Errorf("send through an https→http redirect = %v, want it refused", err)
	}
	if n := plain.Load(); n != 0 {
		t.Errorf("the plain-http server got %d requests, want none", n)
	}

	tr := &Tracker{URL: tls.URL + "/api", Client: tls.Client(), Token: "tracker-token", Logger: quietLogger()}
	tr.defaults()
	if _, _, err := tr.fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "refusing a redirect") {
		t.Errorf("tracker fetch through an https→http redirect = %v, want it refused", err)
	}
	if n := plain.Load(); n != 0 {
		t.Errorf("the plain-http server got %d requests, want none", n)
	}
}
