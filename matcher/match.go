package matcher

import (
	"fmt"
	"path"
	"strings"
)

// maxListed bounds the candidates a SplitTrace lists.
const maxListed = 10

type matchResult struct {
	req  int32 // -1: none
	caps []Capture
	rule string
	hold *Hold
}

// splitOutcome is one split's requests.
type splitOutcome struct {
	caps    []Capture
	keys    []key
	accept  []int32
	notOpen []int32
}

// match decides a File Bin file's request from its name (rel is its path inside the bin).
func (m *Matcher) match(rel, pin string, explain bool, t *Trace) matchResult {
	outs, truncated, ruleName := m.decide(rel, explain, t)
	switch {
	case pin != "":
		return m.pinned(pin, outs, ruleName, t)
	case ruleName == "":
		return matchResult{req: -1, hold: m.noRuleFits(rel, t)}
	}
	return m.conclude(outs, truncated, ruleName, path.Base(rel), t)
}

// decide tries the rules in order on the file's own name, then, when none fits and the file is
// in a folder, on that folder's name below the bin, so that a package folder (an IMF) is
// matched as one. The first rule that fits decides; its splits are returned.
func (m *Matcher) decide(rel string, explain bool, t *Trace) (outs []splitOutcome, truncated bool, ruleName string) {
	if t.Rules == nil {
		t.Rules = make([]RuleTrace, 0, len(m.rules))
	}
	names := [2]string{path.Base(rel)}
	if top, _, ok := strings.Cut(rel, "/"); ok {
		names[1] = top
	}
decide:
	for _, name := range names {
		if name == "" {
			continue
		}
		for ri, r := range m.rules {
			rt, o, trunc := m.tryRule(r, name, explain)
			rt.ri = ri
			t.Rules = append(t.Rules, rt)
			if rt.Fits {
				outs, truncated, ruleName = o, trunc, r.Name
				t.Decided = r.Name
				break decide
			}
		}
	}
	if explain || ruleName == "" {
		// Saying where a pattern stopped costs more than matching, so it is worked out
		// again here, only when it will be read.
		for j := range t.Rules {
			if rt := &t.Rules[j]; !rt.Fits {
				r := &m.rules[rt.ri]
				rt.Why = r.pat.describeStop(r.pat.split(rt.Name, r.where, true), r.where)
			}
		}
	}
	return outs, truncated, ruleName
}

// noRuleFits is the hold of a name no rule fits, saying where each stopped.
func (m *Matcher) noRuleFits(rel string, t *Trace) *Hold {
	const fix = `; rename the file, move it into its request's drop folder, or pin it with request = "SR-…" in its sidecar`
	if len(m.rules) == 0 {
		return &Hold{HoldNoMatchingRequest, "there are no naming rules ([[rule]] in the config) to match File Bin files with" + fix}
	}
	var why []string
	for _, rt := range t.Rules {
		why = append(why, fmt.Sprintf("rule %s on %s: %s", rt.Rule, rt.Name, rt.Why))
	}
	return &Hold{HoldNoMatchingRequest, fmt.Sprintf("no naming rule fits the name %s (%s)%s", path.Base(rel), strings.Join(why, "; "), fix)}
}

// conclude turns the deciding rule's splits into a verdict: exactly one accepting request
// across all splits is a match; several are ambiguous; none is request_not_open when a
// closed request fits, else no_matching_request with the nearest requests.
func (m *Matcher) conclude(outs []splitOutcome, truncated bool, ruleName, name string, t *Trace) matchResult {
	res := matchResult{req: -1, rule: ruleName}
	var accept, notOpen []int32
	var capsOf [][]Capture // of each accepted request, the first split pointing at it
	for _, o := range outs {
		for _, i := range o.accept {
			if !containsIdx(accept, i) {
				capsOf = append(capsOf, o.caps)
				accept = append(accept, i)
			}
		}
		for _, i := range o.notOpen {
			if !containsIdx(notOpen, i) {
				notOpen = append(notOpen, i)
			}
		}
	}
	if len(outs) > 0 {
		res.caps = outs[0].caps // metadata for explain, whatever the outcome
	}
	switch {
	case len(accept) == 1 && !truncated:
		res.req, res.caps = accept[0], capsOf[0]
	case truncated:
		res.hold = &Hold{HoldAmbiguousMatch, fmt.Sprintf("the name splits more ways than hotdrop examines by rule %s; pin it with request = \"SR-…\" in a sidecar, or rename it", ruleName)}
	case len(accept) > 1:
		res.hold = &Hold{HoldAmbiguousMatch, fmt.Sprintf("the name fits %d requests (%s) by rule %s; pin it with request = \"SR-…\" in a sidecar %s.toml, or rename it",
			len(accept), strings.Join(m.ids(accept), ", "), ruleName, name)}
	case len(notOpen) > 0:
		var s []string
		for _, i := range notOpen {
			s = append(s, fmt.Sprintf("%s (status %s)", m.ix.reqs[i].req.ID, m.ix.reqs[i].req.Status))
		}
		res.hold = &Hold{HoldRequestNotOpen, fmt.Sprintf("the name fits %s, which takes no delivery; ask the studio to reopen it", strings.Join(s, ", "))}
	default:
		res.hold = &Hold{HoldNoMatchingRequest, m.nearestMessage(outs, t)}
	}
	return res
}

// tryRule splits name by one rule and looks up each split's requests.
func (m *Matcher) tryRule(r rule, name string, explain bool) (RuleTrace, []splitOutcome, bool) {
	rt := RuleTrace{Rule: r.Name, Pattern: r.pat.text, Name: name}
	sr := r.pat.split(name, r.where, false)
	rt.Truncated = sr.truncated
	if len(sr.splits) == 0 {
		return rt, nil, false // rt.Why is filled in by decide when it is wanted
	}
	rt.Fits = true
	outs := make([]splitOutcome, 0, len(sr.splits))
	for _, caps := range sr.splits {
		o := splitOutcome{caps: caps, keys: m.ix.keys(m.ps, caps)}
		st := SplitTrace{Captures: caps}
		if explain {
			st.Looked = m.ix.describeCandidates(o.keys)
		}
		same, lacking, all := m.ix.candidates(o.keys)
		if all {
			for i := range m.ix.reqs {
				m.consider(int32(i), &o, &st, explain)
			}
		} else {
			for _, i := range same {
				m.consider(i, &o, &st, explain)
			}
			for _, i := range lacking {
				m.consider(i, &o, &st, explain)
			}
		}
		rt.Splits = append(rt.Splits, st)
		outs = append(outs, o)
	}
	return rt, outs, sr.truncated
}

// consider compares request i with a split, and when explaining says why it is kept or
// dropped (every kept request is listed; dropped ones up to maxListed).
func (m *Matcher) consider(i int32, o *splitOutcome, st *SplitTrace, explain bool) {
	e := &m.ix.reqs[i]
	dist := m.ix.distance(i, o.keys)
	kept := dist == 0 && m.ix.accepting[i]
	switch {
	case kept:
		o.accept = append(o.accept, i)
		st.Matches = append(st.Matches, e.req.ID)
	case dist == 0:
		o.notOpen = append(o.notOpen, i)
	}
	if !explain {
		return
	}
	if !kept && len(st.Candidates) >= maxListed {
		st.More++
		return
	}
	d := m.ix.differs(i, o.keys)
	c := Candidate{Request: e.req.ID, Status: e.req.Status, Kept: kept, Diffs: d}
	switch {
	case kept:
		c.Why = "every captured field it has agrees"
	case len(d) == 0:
		c.Why = fmt.Sprintf("status %q takes no delivery", e.req.Status)
	default:
		var s []string
		for _, x := range d {
			s = append(s, x.String())
		}
		c.Why = strings.Join(s, ", ")
	}
	st.Candidates = append(st.Candidates, c)
}

// pinned decides a File Bin file pinned by a sidecar's request key.
func (m *Matcher) pinned(pin string, outs []splitOutcome, ruleName string, t *Trace) matchResult {
	res := matchResult{req: -1, rule: ruleName}
	i, ok := m.ix.byID[strings.ToLower(pin)]
	if !ok {
		res.hold = &Hold{HoldNoMatchingRequest, fmt.Sprintf("a sidecar pins the file to %s, which is not a known request; fix the sidecar's request key", pin)}
		return res
	}
	e := &m.ix.reqs[i]
	if !e.req.Accepting() {
		res.hold = &Hold{HoldRequestNotOpen, fmt.Sprintf("a sidecar pins the file to %s, whose status %q takes no delivery", e.req.ID, e.req.Status)}
		return res
	}
	res.req = i
	for _, o := range outs {
		if containsIdx(o.accept, i) {
			res.caps = o.caps
			break
		}
	}
	if res.caps == nil && ruleName != "" {
		t.Notes = append(t.Notes, fmt.Sprintf("no split by rule %s points at %s: the name's captures are not used as metadata", ruleName, e.req.ID))
	}
	t.Notes = append(t.Notes, fmt.Sprintf("pinned to %s by a sidecar: the naming rules do not decide", e.req.ID))
	return res
}

// nearestMessage finds the nearest accepting requests over every split and says how they
// differ.
func (m *Matcher) nearestMessage(outs []splitOutcome, t *Trace) string {
	type found struct {
		near
		split int
	}
	var all []found
	for si, o := range outs {
		for _, n := range m.ix.nearest(o.keys, 3) {
			j := 0
			for j < len(all) && all[j].i != n.i {
				j++
			}
			switch {
			case j == len(all):
				all = append(all, found{n, si})
			case n.nearer(all[j].near):
				all[j] = found{n, si}
			}
		}
	}
	for a := 1; a < len(all); a++ { // a few entries: insertion sort
		for b := a; b > 0 && all[b].nearer(all[b-1].near); b-- {
			all[b], all[b-1] = all[b-1], all[b]
		}
	}
	if len(all) == 0 {
		return "no open request shares any value the name gives; check the name against the requests, or move the file into its request's drop folder"
	}
	var b strings.Builder
	b.WriteString("no open request fits the name; nearest: ")
	for j, f := range all[:min(3, len(all))] {
		diffs := m.ix.differs(f.i, outs[f.split].keys)
		id := m.ix.reqs[f.i].req.ID
		t.Nearest = append(t.Nearest, Nearest{Request: id, Diffs: diffs})
		if j > 0 {
			b.WriteString("; ")
		}
		b.WriteString(id)
		b.WriteString(" (")
		for k, d := range diffs {
			if k > 0 {
				b.WriteString(", ")
			}
			b.WriteString(d.String())
		}
		b.WriteString(")")
	}
	return b.String()
}

func (m *Matcher) ids(list []int32) []string {
	out := make([]string, len(list))
	for j, i := range list {
		out[j] = m.ix.reqs[i].req.ID
	}
	return out
}

func containsIdx(list []int32, i int32) bool {
	for _, x := range list {
		if x == i {
			return true
		}
	}
	return false
}
