package delivery

import (
	"fmt"
	"strings"
	"time"
)

// A request or file that is not done says, in one line, what it waits for: a coordinator
// must not have to read the log (or the SPEC) to learn that a files = 0 request waits for its
// ready marker, or why an upload keeps retrying. These functions only read the state the
// engine already keeps; they decide nothing.

// whyRequest is the one line a request's card, `hotdrop status`, the API and its status
// file show beside its state; "" once it is delivered.
func whyRequest(r *reqState, files []*fileState, opt Options, now time.Time) string {
	if r.state == Delivered {
		return ""
	}
	if r.setupErr != "" {
		return "no drop folder: " + r.setupErr + " (the other requests run; fix the request or watch.folder)"
	}
	if !r.Accepting() {
		return fmt.Sprintf("not open: %s (the studio's status takes no delivery until it is open or redelivery_requested)", r.Status)
	}
	c := countStates(files)
	ready, held, failed, uploading, settling := c.of(Ready), c.of(Held), c.of(Failed), c.of(Uploading), c.of(Settling)
	present := len(files) - c.of(Delivered)
	var retrying *fileState
	for _, fs := range files {
		if fs.rec.State == Uploading && fs.retrying {
			retrying = fs
			break
		}
	}
	switch {
	case retrying != nil:
		return whyRetrying(retrying, now)
	case failed > 0:
		return fmt.Sprintf("%d file(s) failed: fix the cause shown, then Retry (hotdrop retry %s)", failed, r.ID)
	case held > 0 && held == countReason(files, ReasonAlreadyDelivered):
		return fmt.Sprintf("delivered; %d file(s) came or changed after and are held: they go only if the studio asks for a redelivery (status redelivery_requested)", held)
	case held > 0:
		return fmt.Sprintf("%d file(s) held: nothing of %s is sent until each is fixed (the reason is on the file)", held, r.ID)
	case uploading > 0:
		return fmt.Sprintf("uploading %d file(s)", uploading)
	}
	deliver := "hotdrop deliver " + r.ID
	if r.deliver && present == 0 {
		return "released (hotdrop deliver): files dropped now are sent once they settle"
	}
	if r.deliver && !opt.AutoDeliver && ready > 0 && r.Files > 0 && ready < r.Files {
		return fmt.Sprintf("released; %d of %d files ready, it goes once all are", ready, r.Files)
	}
	switch {
	case r.Files == 0 && !r.marker && !r.deliver:
		if present == 0 {
			return fmt.Sprintf("waiting for files, then %s or %s", opt.ReadyMarker, deliver)
		}
		return fmt.Sprintf("%d file(s) here; waiting for %s or %s", present, opt.ReadyMarker, deliver)
	case r.Files > 0 && present == 0:
		return fmt.Sprintf("no file yet: it takes %d", r.Files)
	case r.Files > 0 && ready < r.Files:
		if settling > 0 {
			return fmt.Sprintf("%d of %d files ready; %d still being written (settling)", ready, r.Files, settling)
		}
		return fmt.Sprintf("%d of %d files ready: waiting for %d more", ready, r.Files, r.Files-ready)
	case r.needsMarker && !r.marker && !r.deliver:
		return fmt.Sprintf("waiting for %s or %s (its source type requires the ready marker)", opt.ReadyMarker, deliver)
	case settling > 0:
		return fmt.Sprintf("%d file(s) still being written (settling)", settling)
	case ready > 0 && !opt.AutoDeliver && !r.deliver:
		return fmt.Sprintf("complete; waiting for %s (auto_deliver = false)", deliver)
	case ready > 0:
		return "queued: waiting for an upload slot"
	}
	return ""
}

// whyFile is a file's one line while it is neither delivered nor held or failed (those carry
// their reason).
func whyFile(fs *fileState, now time.Time) string {
	switch fs.rec.State {
	case Settling:
		return "still being written: it counts as finished once unchanged for watch.settle"
	case Uploading:
		if fs.retrying {
			return whyRetrying(fs, now)
		}
		if p := fs.x().parkedBehind; p != "" {
			return "waits for the upload of " + p + ", which goes to the same remote path; it goes once that one ends"
		}
	}
	return ""
}

// whyRetrying is "retrying: CAUSE — next try in N s".
func whyRetrying(fs *fileState, now time.Time) string {
	cause := fs.x().retryWhy
	if cause == "" {
		cause = "a transient error"
	}
	s := "retrying: " + strings.TrimSuffix(cause, ".")
	if wait := fs.x().nextTry.Sub(now); wait > 0 {
		s += fmt.Sprintf(" — next try in %s", roundWait(wait))
	} else if !fs.x().nextTry.IsZero() {
		s += " — trying now"
	}
	return s
}

func roundWait(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%d s", int(d.Seconds()+0.5))
	}
	return d.Round(time.Second).String()
}

// canDeliver says whether `hotdrop deliver` (the dashboard's Deliver) would change anything:
// it stands in for the ready marker and for auto_deliver = false, and never overrides a hold.
func canDeliver(r *reqState, opt Options) bool {
	if !r.Accepting() || r.state == Delivered || r.deliver || r.setupErr != "" {
		return false
	}
	return r.Files == 0 || (r.needsMarker && !r.marker) || !opt.AutoDeliver
}

// DeliverOutcome says in words what `hotdrop deliver` did to a request, from its view after.
func DeliverOutcome(v RequestView) string {
	switch {
	case v.State == Uploading || v.State == Delivered:
		return fmt.Sprintf("%s released: its files are uploading", v.ID)
	case v.Why != "":
		return fmt.Sprintf("%s released; %s", v.ID, v.Why)
	}
	return fmt.Sprintf("%s released", v.ID)
}

// countReason counts the files held or failed for reason.
func countReason(files []*fileState, reason string) int {
	n := 0
	for _, fs := range files {
		if fs.rec.Reason == reason {
			n++
		}
	}
	return n
}
