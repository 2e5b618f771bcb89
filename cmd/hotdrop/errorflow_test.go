package main

import (
	"errors"
	"syscall"
	"testing"

	"github.com/hotdrop/hotdrop/uploader"
)

// TestTransferErrorKeepsTheSide: the adapter hands the engine the uploader's verdict whole:
// code, transience, the side it was seen on, and the sentence with the server's words.
func TestTransferErrorKeepsTheSide(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"source", &uploader.Error{Code: uploader.CodeTransient, Transient: true, Source: true, Msg: "cannot read local file /a (input/output error)", Err: syscall.EIO}},
		{"destination", &uploader.Error{Code: uploader.CodeRemoteError, Msg: "upload /a: the server refused", Server: `SSH_FX_FAILURE "quota"`}},
	} {
		ue := uploader.Classify(tt.err)
		te := transferError(tt.err)
		if te.Code != ue.Code || te.Transient != ue.Transient || te.Source != ue.Source || te.Msg != ue.Reason() || !errors.Is(te, tt.err) {
			t.Errorf("%s: transferError = %+v, want the uploader's %+v (Reason %q)", tt.name, te, ue, ue.Reason())
		}
	}
}
