package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// sizeUnits are the suffixes a size may carry. Bare "K", "M", "G" are left
// out on purpose: tools disagree on whether they mean 1000 or 1024.
var sizeUnits = map[string]float64{
	"":    1,
	"B":   1,
	"kB":  1e3,
	"KB":  1e3,
	"MB":  1e6,
	"GB":  1e9,
	"TB":  1e12,
	"KiB": 1 << 10,
	"MiB": 1 << 20,
	"GiB": 1 << 30,
	"TiB": 1 << 40,
}

// parseSize reads "40MiB", "40MB", "1.5GiB", "0" or "1048576" (bytes).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	mult, ok := sizeUnits[unit]
	if num == "" || !ok {
		return 0, errors.New("not a size")
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/int64(mult) {
			return 0, errors.New("not a size")
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f*mult >= math.MaxInt64 {
		return 0, errors.New("not a size")
	}
	return int64(math.Round(f * mult)), nil
}

// fieldName is what a {field} in a template or a request's field may be called.
var fieldName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// templateProblem finds the first problem in a "{field}" template. It returns
// the fields named, and when there is a problem its byte offset and a
// description.
func templateProblem(s string) (fields []string, off int, problem string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '}':
			return fields, i, `"}" has no matching "{"`
		case '{':
			j := strings.IndexAny(s[i+1:], "{}")
			if j < 0 || s[i+1+j] == '{' {
				return fields, i, `"{" is never closed; expected {field} like {title}`
			}
			name := s[i+1 : i+1+j]
			if !fieldName.MatchString(name) {
				return fields, i, fmt.Sprintf("{%s} is not a field name; expected lower-case letters, digits and _ like {package_id}", name)
			}
			fields = append(fields, name)
			i += j + 1
		}
	}
	return fields, -1, ""
}

// destinationProblem says what is wrong with a destination URL, or "".
func destinationProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return parseProblem(s, err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "a destination URL has no ?query or #fragment"
	}
	switch u.Scheme {
	case "sftp":
		if u.User == nil || u.User.Username() == "" {
			return "the user name is missing (sftp://user@host/path)"
		}
		if _, ok := u.User.Password(); ok {
			return "a password does not belong in the URL; put it in destination.password_file"
		}
		if u.Hostname() == "" {
			return "the host is missing"
		}
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				return fmt.Sprintf("port %q is not a number from 1 to 65535", p)
			}
		}
		if u.Path == "" {
			return "the folder path is missing (sftp://user@host/path)"
		}
	case "file":
		if u.Host != "" {
			return "a file URL has no host; write three slashes, file:///absolute/path"
		}
		if u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
			return "a file URL needs an absolute path, file:///absolute/path"
		}
	case "":
		return "the scheme is missing"
	default:
		return fmt.Sprintf("scheme %q is not supported", u.Scheme)
	}
	return ""
}

// shownURL is s as an error may show it: a password in it is replaced by xxxxx, even in a
// URL that does not parse, since config errors reach the log (a refused SIGHUP reload).
// There, where the user part ends is not known (a password may hold a / or a ?), so all
// from the // to the last @ is hidden.
func shownURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	if i, j := strings.Index(s, "//"), strings.LastIndex(s, "@"); i >= 0 && j > i+2 {
		return s[:i+2] + "xxxxx@" + s[j+1:]
	}
	return s
}

// parseProblem says why s does not parse as a URL. The parser's own words quote the part
// it choked on, which in a URL with a user part may be a piece of a password ("invalid
// port \":Pa55\" after host"): then they are not shown.
func parseProblem(s string, err error) string {
	if i := strings.Index(s, "//"); i >= 0 && strings.Contains(s[i:], "@") {
		return "it does not parse as a URL (a character in its user or host part needs %-escaping, or a password is in it; " +
			"its words are not shown, as they may quote a password)"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// httpURLProblem says what is wrong with an http(s) URL, or "".
func httpURLProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return parseProblem(s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "expected an http:// or https:// URL"
	}
	if u.Host == "" {
		return "the host is missing"
	}
	return ""
}

// clockPattern is a time of day; "24:00" is accepted as the end of a day.
var clockPattern = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)

// parseClock reads "HH:MM" as the time since local midnight.
func parseClock(s string, end bool) (time.Duration, bool) {
	if end && s == "24:00" {
		return 24 * time.Hour, true
	}
	m := clockPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	return time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute, true
}

// parseFolderMode reads an octal mode like "2775" into an os.FileMode with
// the setuid, setgid and sticky bits mapped to Go's own flags.
func parseFolderMode(s string) (os.FileMode, error) {
	if s == "" || strings.TrimLeft(s, "01234567") != "" {
		return 0, errors.New("not octal")
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, errors.New("out of range")
	}
	m := os.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m, nil
}

// listenProblem checks a status.listen address and reports whether it is
// loopback-only.
func listenProblem(s string) (loopback bool, problem string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return false, `expected host:port like "127.0.0.1:8470"`
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return false, fmt.Sprintf("port %q is not a number from 0 to 65535", port)
	}
	if host == "localhost" {
		return true, ""
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), ""
}
