package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Account is the user whose view of the file system CheckFiles takes: the user the service
// runs as. A config that names files this user cannot read is as broken as one with a typo,
// and it must be refused before the service starts, not found by a restart loop.
type Account struct {
	Name  string // for messages and the chown to type
	Group string // its primary group's name, for the chgrp to type
	UID   int
	GIDs  []int // primary and supplementary groups
	// Self says the account is this process: files are also opened, so that ACLs, mandatory
	// access control and read-only mounts are seen too, not only mode bits.
	Self bool
}

// CurrentAccount is the account of this process.
func CurrentAccount() Account {
	a := Account{UID: os.Geteuid(), GIDs: append([]int{os.Getegid()}, groups()...), Self: true}
	a.Name = strconv.Itoa(a.UID)
	if u, err := user.LookupId(a.Name); err == nil {
		a.Name = u.Username
	}
	a.Group = groupName(os.Getegid())
	return a
}

// LookupAccount is the account of the user called name, in its groups and in extra (the
// service unit's SupplementaryGroups).
func LookupAccount(name string, extra ...string) (Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Account{}, fmt.Errorf("no user %q on this machine: %w", name, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return Account{}, fmt.Errorf("user %q: its id %q is not a number", name, u.Uid)
	}
	a := Account{Name: u.Username, UID: uid}
	gids, _ := u.GroupIds()
	gids = append([]string{u.Gid}, gids...)
	for _, g := range extra {
		if gr, err := user.LookupGroup(g); err == nil {
			gids = append(gids, gr.Gid)
		}
	}
	for _, g := range gids {
		if n, err := strconv.Atoi(g); err == nil {
			a.GIDs = append(a.GIDs, n)
		}
	}
	if gid, err := strconv.Atoi(u.Gid); err == nil {
		a.Group = groupName(gid)
	}
	if a.UID == os.Geteuid() {
		a.Self = true
	}
	return a, nil
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

func (a Account) inGroup(gid int) bool {
	for _, g := range a.GIDs {
		if g == gid {
			return true
		}
	}
	return false
}

// CheckFiles looks at what the config names on this machine, as the account sees it: the
// secret and key files exist and can be read, state_dir and watch.root can be written (or
// state_dir created), watch.group exists, the config and requests files can be read, every
// {field} of destination.path is a field of every request in reqs and every {field} of
// watch.folder's are said by FolderFieldWarnings. Each problem carries the
// position of its key in the config file and, where a command fixes it, that command. The
// error, when not nil, is an ErrorList.
func CheckFiles(c *Config, reqs []Request, a Account) error {
	ck := &fileCheck{c: c, a: a, loc: relocate(c.File)}
	ck.readable("", c.File, "the config file", false)
	ck.state()
	ck.root()
	ck.group()
	d := c.Destination
	ck.file("destination.identity_file", d.IdentityFile, true,
		"create a key with ssh-keygen -t ed25519 -N '' -f "+ShellQuote(d.IdentityFile)+" and give the .pub to the studio")
	ck.file("destination.password_file", d.PasswordFile, true, "")
	if strings.HasPrefix(d.URL, "sftp:") {
		ck.file("destination.known_hosts", d.KnownHosts, false,
			"hotdrop trust pins the server's host key in it, after you compare its fingerprint")
	}
	ck.file("status.token_file", c.Status.TokenFile, true, "")
	ck.file("status.tls_cert", c.Status.TLSCert, false, "")
	ck.file("status.tls_key", c.Status.TLSKey, true, "")
	ck.file("status.webhook_secret_file", c.Status.WebhookSecretFile, true, "")
	ck.file("requests.token_file", c.Requests.TokenFile, true, "")
	if !a.Self {
		seen := map[string]bool{}
		for _, r := range reqs {
			if f := r.Pos.File; f != "" && !seen[f] {
				seen[f] = true
				ck.readable("requests.files", f, "the requests file", false)
			}
		}
	}
	ck.pathFields(reqs)
	return ck.errs.err()
}

type fileCheck struct {
	c    *Config
	a    Account
	loc  *locator
	errs ErrorList
	// blocked are the folders already reported as closed to the account: the fix is said once.
	blocked map[string]bool
}

// relocate finds the keys of the config file again: Config keeps no positions (it is
// compared whole in tests and by reloads), and a problem found on disk needs one.
func relocate(file string) *locator {
	data, err := readFile(file)
	if err != nil {
		return nil
	}
	return locate(file, string(data))
}

// pos is where key's value is written, or the config file when the key is not written (a
// default).
func (ck *fileCheck) pos(key string) Position {
	if ck.loc != nil && key != "" {
		if p, ok := ck.loc.value(key); ok {
			return p
		}
	}
	return Position{File: ck.c.File}
}

func (ck *fileCheck) errorf(key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if key != "" {
		if _, written := ck.loc.valueOK(key); !written {
			msg += " (" + key + " is not set, so its default applies)"
		}
		msg = key + ": " + msg
	}
	ck.errs = append(ck.errs, &Error{Pos: ck.pos(key), Msg: msg})
}

func (l *locator) valueOK(key string) (Position, bool) {
	if l == nil {
		return Position{}, true // cannot tell: say nothing about defaults
	}
	return l.value(key)
}

// file checks a file the config names: it exists, is a file and the account can read it.
// missing, when not empty, says how to make a file that does not exist yet.
func (ck *fileCheck) file(key, p string, secret bool, missing string) {
	if p == "" {
		return
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		if blocked := ck.blockedParent(p); blocked != "" {
			ck.errorf(key, "%s cannot be reached by the user %s: %s", p, ck.a.Name, blocked)
			return
		}
		if missing != "" {
			missing = "; " + missing
		}
		ck.errorf(key, "%s does not exist%s", p, missing)
		return
	}
	if err != nil && !errors.Is(err, fs.ErrPermission) {
		ck.errorf(key, "%s: %v", p, err)
		return
	}
	if err == nil && fi.IsDir() {
		ck.errorf(key, "%s is a folder; expected a file", p)
		return
	}
	ck.readable(key, p, "", secret)
	if perm := fi.Mode().Perm(); secret && perm&0o044 != 0 && runtime.GOOS != "windows" {
		// As OpenSSH refuses an unprotected private key: the render-farm users who share
		// this machine must not read the SSH key, the password or the tokens. Windows has
		// no such mode bits; its ACLs are the administrator's to set.
		ck.errorf(key, "%s is readable by %s (mode %04o); a secret must be readable only by the user hotdrop runs as: chmod 600 %s",
			p, readers(perm), perm, ShellQuote(p))
	}
}

func readers(perm fs.FileMode) string {
	switch {
	case perm&0o040 != 0 && perm&0o004 != 0:
		return "its group and all users"
	case perm&0o040 != 0:
		return "its group"
	}
	return "all users"
}

// readable reports a file the account cannot read, with the command that lets it.
func (ck *fileCheck) readable(key, p, what string, secret bool) {
	label := p
	if what != "" {
		label = what + " " + p
	}
	if blocked := ck.blockedParent(p); blocked != "" {
		ck.errorf(key, "%s cannot be reached by the user %s: %s", label, ck.a.Name, blocked)
		return
	}
	fi, err := os.Stat(p)
	if err != nil {
		ck.errorf(key, "%s: %v", label, err)
		return
	}
	if !ck.a.allows(fi, 4) {
		fix := ck.a.grant(p, fi, "r")
		if secret {
			fix = "chown " + ck.a.Name + " " + ShellQuote(p) + " (a secret stays mode 600, readable by its owner only)"
		}
		ck.errorf(key, "%s cannot be read by the user %s (%s): %s", label, ck.a.Name, describeOwner(fi), fix)
		return
	}
	if ck.a.Self {
		f, err := os.Open(p)
		if err != nil {
			ck.errorf(key, "%s cannot be read by the user %s: %v", label, ck.a.Name, errors.Unwrap(err))
			return
		}
		f.Close()
	}
}

// blockedParent names the first folder above p (p excluded) that the account may not enter,
// with the command that lets it, or "".
func (ck *fileCheck) blockedParent(p string) string {
	for _, dir := range ancestors(p) {
		fi, err := os.Stat(dir)
		if err != nil {
			return "" // the caller reports what is missing
		}
		if !ck.a.allows(fi, 1) {
			if ck.blocked[dir] {
				return fmt.Sprintf("the folder %s does not let it in (see above)", dir)
			}
			if ck.blocked == nil {
				ck.blocked = map[string]bool{}
			}
			ck.blocked[dir] = true
			return fmt.Sprintf("the folder %s (%s) does not let it in: %s", dir, describeOwner(fi), ck.a.grant(dir, fi, "x"))
		}
	}
	return ""
}

// ancestors lists the folders above p, from the root down.
func ancestors(p string) []string {
	var out []string
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		out = append(out, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) < len(out[j]) })
	return out
}

// writableDir checks a folder the account must write into, or, when it does not exist,
// create. It returns what is wrong, or "".
func (ck *fileCheck) writableDir(p, create string) string {
	if blocked := ck.blockedParent(p); blocked != "" {
		return fmt.Sprintf("%s cannot be reached by the user %s: %s", p, ck.a.Name, blocked)
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		if create == "" {
			return ""
		}
		// The nearest folder that exists must let the account make the rest.
		parent := filepath.Dir(p)
		for {
			pfi, perr := os.Stat(parent)
			if perr == nil {
				if !pfi.IsDir() {
					return fmt.Sprintf("%s cannot be created: %s is not a folder", p, parent)
				}
				if !ck.a.allows(pfi, 3) || ck.a.Self && !writable(parent) {
					return fmt.Sprintf("%s does not exist and cannot be created by the user %s: %s (%s) is not writable for it; %s",
						p, ck.a.Name, parent, describeOwner(pfi), create)
				}
				return ""
			}
			if !errors.Is(perr, fs.ErrNotExist) {
				return fmt.Sprintf("%s cannot be created: %v", p, perr)
			}
			if filepath.Dir(parent) == parent {
				return ""
			}
			parent = filepath.Dir(parent)
		}
	}
	if err != nil {
		return fmt.Sprintf("%s: %v", p, err)
	}
	if !fi.IsDir() {
		return fmt.Sprintf("%s is not a folder", p)
	}
	if !ck.a.allows(fi, 7) || ck.a.Self && !writable(p) {
		return fmt.Sprintf("%s is not writable for the user %s (%s): chown %s %s", p, ck.a.Name, describeOwner(fi), ck.a.Name, ShellQuote(p))
	}
	return ""
}

func (ck *fileCheck) state() {
	create := "make it with install -d -o " + ck.a.Name + " -m 0750 " + ShellQuote(ck.c.StateDir)
	if msg := ck.writableDir(ck.c.StateDir, create); msg != "" {
		ck.errorf("state_dir", "%s", msg)
		return
	}
	// What another user (root, trying `hotdrop run` by hand) left in it locks the service out.
	for _, name := range []string{"state.db", "state.db-wal", "state.db-shm", "hotdrop.lock", "tmp"} {
		p := filepath.Join(ck.c.StateDir, name)
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		want := fs.FileMode(6)
		if fi.IsDir() {
			want = 7
		}
		if !ck.a.allows(fi, want) {
			ck.errorf("state_dir", "%s is not writable for the user %s (%s): chown -R %s %s",
				p, ck.a.Name, describeOwner(fi), ck.a.Name, ShellQuote(ck.c.StateDir))
			return
		}
	}
}

func (ck *fileCheck) root() {
	root := ck.c.Watch.Root
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) && ck.blockedParent(root) == "" {
		g := ck.c.Watch.Group
		if g == "" {
			g = ck.a.Group
		}
		ck.errorf("watch.root", "%s does not exist (hotdrop makes the drop folders below it, not the folder itself): install -d -o %s -g %s -m 2775 %s",
			root, ck.a.Name, g, ShellQuote(root))
		return
	}
	if msg := ck.writableDir(root, ""); msg != "" {
		ck.errorf("watch.root", "%s", msg)
	}
}

func (ck *fileCheck) group() {
	g := ck.c.Watch.Group
	if g == "" {
		return
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		ck.errorf("watch.group", "there is no group %q on this machine; create it (groupadd %s) or name an existing one", g, g)
		return
	}
	gid, _ := strconv.Atoi(gr.Gid)
	if ck.a.UID != 0 && !ck.a.inGroup(gid) {
		ck.errorf("watch.group", "the user %s is not in the group %s, so it cannot give drop folders that group: usermod -aG %s %s (hotdrop service install also adds it to the unit's SupplementaryGroups)",
			ck.a.Name, g, g, ck.a.Name)
	}
}

// pathFields checks that every request has every {field} destination.path puts into the
// remote path: a request without one would fail each of its files at upload.
func (ck *fileCheck) pathFields(reqs []Request) {
	fields, known := templateFields(ck.c.Destination.Path, reqs)
	for _, f := range fields {
		if f == "name" {
			continue
		}
		if !known[f] {
			ck.unknownField("destination.path", f, known, []string{"name"}, " and {name} is the file's own path")
			continue
		}
		for _, r := range reqs {
			if _, ok := r.Fields[f]; !ok {
				ck.errs = append(ck.errs, &Error{Pos: r.Pos, Msg: fmt.Sprintf(
					"request %s has no %s, which destination.path (%s) puts into the remote path: every file of it would fail; add %s = \"…\" to it",
					r.ID, f, ck.pos("destination.path"), f)})
			}
		}
	}
}

// templateFields returns the {fields} of tmpl and the fields at least one request has; no
// fields when there are no requests to compare with, or when tmpl is broken (Parse reported it).
func templateFields(tmpl string, reqs []Request) ([]string, map[string]bool) {
	fields, _, problem := templateProblem(tmpl)
	if len(reqs) == 0 || problem != "" {
		return nil, nil
	}
	return fields, requestFields(reqs)
}

// requestFields is the set of fields at least one request has.
func requestFields(reqs []Request) map[string]bool {
	known := map[string]bool{}
	for _, r := range reqs {
		for k := range r.Fields {
			known[k] = true
		}
	}
	return known
}

// unknownField reports {f} in the template at key as no request's field, suggesting the
// nearest of the known fields and of extra (fields the template has besides the requests').
func (ck *fileCheck) unknownField(key, f string, known map[string]bool, extra []string, tail string) {
	ck.unknownFieldOf(key, f, known, known, tail, extra...)
}

// unknownFieldOf is unknownField suggesting from known and listing have: the fields the
// requests loaded have.
func (ck *fileCheck) unknownFieldOf(key, f string, known, have map[string]bool, tail string, extra ...string) {
	sorted := func(m map[string]bool) []string {
		var names []string
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		return names
	}
	hint := ""
	if s := suggest(f, append(sorted(known), extra...)); s != "" {
		hint = fmt.Sprintf(" (did you mean {%s}?)", s)
	}
	listed := "; the requests have no field yet"
	if names := sorted(have); len(names) > 0 {
		listed = "; requests have {" + strings.Join(names, "}, {") + "}"
	}
	ck.errorf(key, "{%s} is not a field of any request%s%s%s", f, hint, listed, tail)
}

// describeOwner says who owns a file and its mode, as ls -l would.
func describeOwner(fi fs.FileInfo) string {
	uid, gid, ok := owner(fi)
	if !ok {
		return fmt.Sprintf("mode %04o", fi.Mode().Perm())
	}
	u := strconv.Itoa(uid)
	if x, err := user.LookupId(u); err == nil {
		u = x.Username
	}
	return fmt.Sprintf("owner %s:%s, mode %04o", u, groupName(gid), fi.Mode().Perm())
}

// grant is the command that gives the account the permission bits ("r", "x") on p.
func (a Account) grant(p string, fi fs.FileInfo, bits string) string {
	uid, gid, ok := owner(fi)
	q := ShellQuote(p)
	switch {
	case !ok:
		return "let " + a.Name + " " + map[string]string{"r": "read", "x": "enter"}[bits] + " it"
	case uid == a.UID:
		return "chmod u+" + bits + " " + q
	case a.inGroup(gid):
		return "chmod g+" + bits + " " + q
	}
	return "chgrp " + a.Group + " " + q + " && chmod g+" + bits + " " + q
}

// ShellQuote quotes p for a shell when it needs it, so a command can be pasted as it is.
func ShellQuote(p string) string {
	if p != "" && strings.IndexFunc(p, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '+' || r == ':' || r == '@' ||
			'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}) < 0 {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
