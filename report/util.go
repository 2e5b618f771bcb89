package report

import (
	"errors"
	"net/url"
)

// redact keeps only the scheme and host of a URL for a log line or an error: webhook URLs
// often carry their secret in the path (/hooks/T0/B0/XXXX) and any URL may in its query or
// user info.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(URL not shown)"
	}
	out := u.Scheme + "://" + u.Host
	if u.Path != "" && u.Path != "/" {
		out += "/…"
	}
	return out
}

// bareNetError strips the *url.Error that net/http wraps around a failed call: its message
// repeats the whole URL, which may hold a secret.
func bareNetError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
