package matcher

import (
	"fmt"
	"strings"
	"sync"

	"golang.org/x/text/language"
	"golang.org/x/text/unicode/norm"
)

// Request is a Source Request as the matcher needs it.
type Request struct {
	ID, Status string
	// Files is how many files fulfil the request (0 = any number, complete with the ready
	// marker). FilesSet says whether the request set it; when not, the profile's default applies.
	Files    int
	FilesSet bool
	// Fields holds every non-empty string field: id, title, package_id, source_type, language,
	// status and the extras (episode, season...). An absent field does not constrain matching.
	Fields map[string]string
}

// Accepting reports whether the request's status takes deliveries (open or
// redelivery_requested).
func (r *Request) Accepting() bool {
	return r.Status == "open" || r.Status == "redelivery_requested"
}

// index finds requests by the values of the fields naming rules capture, so that matching a
// name costs about the number of requests sharing its rarest captured value, not rules ×
// requests.
type index struct {
	reqs    []entry
	byID    map[string]int32 // lower-cased id → position
	fid     map[string]int   // field → position in post, lacking and a request's row of vals
	post    []map[string][]int32
	valID   []map[string]uint32 // per field: comparable value → its number (from 1)
	lacking [][]int32           // requests without the field (it does not constrain them)
	// vals holds, row by row (one row per request, one column per field), the number of the
	// request's comparable value, 0 when it lacks the field. Comparing numbers in one flat
	// array keeps the comparisons of a search in the cache, not in 10,000 scattered strings.
	vals      []uint32
	accepting []bool
	pool      sync.Pool // *scratch
}

// noValue is the number of a captured value no request has: it equals nothing.
const noValue = ^uint32(0)

type entry struct {
	req Request
	raw []string // per indexed field: the value as the request writes it
}

// scratch marks requests already looked at during one nearest-request search, without
// clearing an array of all requests each time.
type scratch struct {
	stamp []uint32
	gen   uint32
}

func newIndex(ps *profiles, reqs []Request, fields []string) *index {
	ix := &index{byID: make(map[string]int32, len(reqs)), fid: map[string]int{}}
	for _, f := range fields {
		if _, ok := ix.fid[f]; !ok {
			ix.fid[f] = len(ix.post)
			ix.post = append(ix.post, map[string][]int32{})
			ix.valID = append(ix.valID, map[string]uint32{})
			ix.lacking = append(ix.lacking, nil)
		}
	}
	nf := len(ix.post)
	ix.reqs = make([]entry, len(reqs))
	ix.vals = make([]uint32, len(reqs)*nf)
	ix.accepting = make([]bool, len(reqs))
	for i, r := range reqs {
		e := entry{req: r, raw: make([]string, nf)}
		if e.req.Fields == nil {
			e.req.Fields = map[string]string{}
		}
		for f, k := range ix.fid {
			e.raw[k] = r.Fields[f]
			norm := normValue(ps, f, e.raw[k])
			if norm == "" {
				ix.lacking[k] = append(ix.lacking[k], int32(i))
				continue
			}
			id, ok := ix.valID[k][norm]
			if !ok {
				id = uint32(len(ix.valID[k]) + 1)
				ix.valID[k][norm] = id
			}
			ix.vals[i*nf+k] = id
			ix.post[k][norm] = append(ix.post[k][norm], int32(i))
		}
		ix.reqs[i] = e
		ix.accepting[i] = e.req.Accepting()
		if _, dup := ix.byID[strings.ToLower(r.ID)]; !dup {
			ix.byID[strings.ToLower(r.ID)] = int32(i)
		}
	}
	n := len(reqs)
	ix.pool.New = func() any { return &scratch{stamp: make([]uint32, n)} }
	return ix
}

// normValue is the form in which a captured value and a request's value are compared:
// source_type by profile (aliases count), language as canonical BCP 47, anything else ignoring
// case, with a space and an underscore counting as the same (titles are written with spaces
// in requests and with underscores in file names). "" stays "": the field is absent.
func normValue(ps *profiles, field, v string) string {
	if v == "" {
		return ""
	}
	switch field {
	case "source_type":
		if p := ps.lookup(v); p != nil {
			return "p:" + aliasKey(p.Name)
		}
		return "t:" + foldValue(v)
	case "language":
		return ps.langKey(v)
	}
	return foldValue(v)
}

// foldValue lower-cases ASCII and turns spaces into underscores, allocating only when that
// changes something. Non-ASCII text is compared as strings.ToLower gives it in Unicode's
// composed form (NFC): macOS writes "é" in names as e and a combining accent (NFD), a
// tracker as one letter, and both are the same title.
func foldValue(v string) string {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 0x80 {
			return foldUnicode(v)
		}
		if ('A' <= c && c <= 'Z') || c == ' ' {
			b := []byte(v)
			for j := i; j < len(b); j++ {
				switch c := b[j]; {
				case 'A' <= c && c <= 'Z':
					b[j] = c + 'a' - 'A'
				case c == ' ':
					b[j] = '_'
				case c >= 0x80:
					return foldUnicode(v)
				}
			}
			return string(b)
		}
	}
	return v
}

func foldUnicode(v string) string {
	return strings.ReplaceAll(strings.ToLower(norm.NFC.String(v)), " ", "_")
}

// langCacheMax bounds the language cache: names are not trusted input.
const langCacheMax = 4096

// langKey is the comparable form of a language: its canonical BCP 47 tag, lower-cased, or the
// text itself, marked, when it is not a tag. Parsing a tag costs more than the rest of matching
// a name, and a studio uses a few dozen languages, so results are cached.
func (ps *profiles) langKey(v string) string {
	if k, ok := ps.langCache.Load(v); ok {
		return k.(string)
	}
	var k string
	if tag, err := language.Parse(v); err == nil {
		k = "l:" + strings.ToLower(tag.String())
	} else {
		k = "x:" + strings.ToLower(v)
	}
	if ps.langCount.Add(1) <= langCacheMax {
		ps.langCache.Store(v, k)
	}
	return k
}

// key is one captured field in index terms: its comparable value, that value's number and
// the requests having it.
type key struct {
	fid  int
	id   uint32
	same []int32
	Capture
}

// keys turns a split into index keys, leaving out fields no request has (they constrain
// nothing and only become metadata).
func (ix *index) keys(ps *profiles, caps []Capture) []key {
	out := make([]key, 0, len(caps))
	for _, c := range caps {
		k, ok := ix.fid[c.Field]
		if !ok || len(ix.lacking[k]) == len(ix.reqs) {
			continue
		}
		n := normValue(ps, c.Field, c.Value)
		id, ok := ix.valID[k][n]
		if !ok {
			id = noValue
		}
		out = append(out, key{k, id, ix.post[k][n], c})
	}
	return out
}

// differs lists the captured fields the request has with another value.
func (ix *index) differs(i int32, keys []key) []Diff {
	var d []Diff
	row := ix.vals[int(i)*len(ix.post):]
	for _, k := range keys {
		if v := row[k.fid]; v != 0 && v != k.id {
			if d == nil {
				d = make([]Diff, 0, len(keys))
			}
			d = append(d, Diff{Field: k.Field, File: k.Value, Request: ix.reqs[i].raw[k.fid]})
		}
	}
	return d
}

func (ix *index) distance(i int32, keys []key) int {
	n, _ := ix.compare(i, keys)
	return n
}

// compare counts the captured fields the request has with another value (differ) and with
// the same value (agree); fields it lacks count in neither.
func (ix *index) compare(i int32, keys []key) (differ, agree int) {
	row := ix.vals[int(i)*len(ix.post):]
	for _, k := range keys {
		switch v := row[k.fid]; v {
		case 0:
		case k.id:
			agree++
		default:
			differ++
		}
	}
	return differ, agree
}

// candidates returns the requests that can agree with every key: those sharing the value of
// the most selective key, plus those lacking that field. all is set when there is no key (no
// request has any captured field), so every request is a candidate.
func (ix *index) candidates(keys []key) (same, lacking []int32, all bool) {
	b := ix.bestKey(keys)
	if b < 0 {
		return nil, nil, true
	}
	return keys[b].same, ix.lacking[keys[b].fid], false
}

// bestKey is the key fewest requests can agree with, or -1 when there is none.
func (ix *index) bestKey(keys []key) int {
	best := -1
	for j, k := range keys {
		if best < 0 || ix.size(k) < ix.size(keys[best]) {
			best = j
		}
	}
	return best
}

// describeCandidates says, for explain, which requests the index looked at for keys.
func (ix *index) describeCandidates(keys []key) string {
	b := ix.bestKey(keys)
	if b < 0 {
		return fmt.Sprintf("all %d requests: none has a field the name gives", len(ix.reqs))
	}
	k := keys[b]
	return fmt.Sprintf("the %d request(s) with %s %q and the %d without %s; the other %d cannot fit",
		len(k.same), k.Field, k.Value, len(ix.lacking[k.fid]), k.Field, len(ix.reqs)-ix.size(k))
}

// size is how many requests can agree with k: those with its value and those lacking it.
func (ix *index) size(k key) int { return len(k.same) + len(ix.lacking[k.fid]) }

// near is a request, how many captured fields it differs on and how many it agrees on.
type near struct {
	i            int32
	dist, agreed int
}

// nearer orders candidates: fewest differing fields, then most agreeing, then request order.
func (a near) nearer(b near) bool {
	if a.dist != b.dist {
		return a.dist < b.dist
	}
	if a.agreed != b.agreed {
		return a.agreed > b.agreed
	}
	return a.i < b.i
}

// nearest returns up to n accepting requests in nearer order. It visits the keys' posting
// lists rarest first and stops once no unvisited request can come before the n-th: after p
// lists, an unvisited request differs on all p of those fields and agrees on at most the
// others. Requests sharing no captured value (nor lacking any captured field) are never named.
func (ix *index) nearest(keys []key, n int) []near {
	var buf [8]key
	order := append(buf[:0], keys...)
	for a := 1; a < len(order); a++ { // a handful of keys: insertion sort, stable
		for b := a; b > 0 && ix.size(order[b]) < ix.size(order[b-1]); b-- {
			order[b], order[b-1] = order[b-1], order[b]
		}
	}
	sc := ix.pool.Get().(*scratch)
	defer ix.pool.Put(sc)
	sc.gen++
	if sc.gen == 0 {
		clear(sc.stamp)
		sc.gen = 1
	}
	top := make([]near, 0, n+1)
	visit := func(i int32) {
		if sc.stamp[i] == sc.gen {
			return
		}
		sc.stamp[i] = sc.gen
		if !ix.accepting[i] {
			return
		}
		d, a := ix.compare(i, keys)
		c := near{i, d, a}
		pos := len(top)
		for pos > 0 && c.nearer(top[pos-1]) {
			pos--
		}
		if pos >= n {
			return
		}
		top = append(top, near{})
		copy(top[pos+1:], top[pos:])
		top[pos] = c
		if len(top) > n {
			top = top[:n]
		}
	}
	for p, k := range order {
		for _, i := range k.same {
			visit(i)
		}
		for _, i := range ix.lacking[k.fid] {
			visit(i)
		}
		visited := p + 1
		if len(top) == n {
			last := top[n-1]
			if last.dist < visited || (last.dist == visited && last.agreed >= len(keys)-visited) {
				break
			}
		}
	}
	return top
}
