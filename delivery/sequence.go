package delivery

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unique"

	"github.com/hotdrop/hotdrop/matcher"
)

// Frame sequences (SPEC.md): files of one request whose names differ only by a frame number
// are one sequence. It is delivered only whole (a gap is a hold, incomplete_sequence), a frame
// much smaller than its neighbours may be held (suspect_frame), and views show it as one row.

// frameOf is what fs's name says about its frame, computed once per name (setName forgets
// it). What is kept is small: the key, shared by every frame of the sequence (unique), and
// where the number sits in the name, which holds the prefix and the suffix.
func (fs *fileState) frameOf() (matcher.Frame, bool) {
	if !fs.frameKnown {
		f, ok := matcher.SplitFrame(fs.name)
		fs.isFrame, fs.frameKnown = ok, true
		if ok {
			fs.frameKey, fs.frameNum = unique.Make(f.Key), f.Number
			fs.frameAt, fs.frameWidth = int32(len(f.Prefix)), uint8(f.Width)
		}
	}
	if !fs.isFrame {
		return matcher.Frame{}, false
	}
	end := int(fs.frameAt) + int(fs.frameWidth)
	return matcher.Frame{Key: fs.frameKey.Value(), Prefix: fs.name[:fs.frameAt], Suffix: fs.name[end:],
		Number: fs.frameNum, Width: int(fs.frameWidth)}, true
}

// sequence is the frames of one sequence in one request, by frame number.
type sequence struct {
	key    string
	frame  matcher.Frame // one frame's, for the prefix and suffix
	frames []*fileState
	width  int // the narrowest padding written
}

func (s *sequence) first() int64 { return s.frames[0].frameNum }
func (s *sequence) last() int64  { return s.frames[len(s.frames)-1].frameNum }
func (s *sequence) name() string {
	return matcher.SequenceName(s.frame, s.first(), s.last(), s.width)
}

// sequencesOf groups files into sequences: two frames or more of the same key, or one when
// the request names its frames (frames = "1001-2400"). Sorted by key; frames by number.
func sequencesOf(files []*fileState, framesGiven bool) []*sequence {
	byKey := map[string]*sequence{}
	for _, fs := range files {
		f, ok := fs.frameOf()
		if !ok {
			continue
		}
		s := byKey[f.Key]
		if s == nil {
			s = &sequence{key: f.Key, frame: f, width: f.Width}
			byKey[f.Key] = s
		}
		s.frames = append(s.frames, fs)
		s.width = min(s.width, f.Width)
	}
	out := make([]*sequence, 0, len(byKey))
	for _, s := range byKey {
		if len(s.frames) < 2 && !framesGiven {
			continue
		}
		sort.Slice(s.frames, func(i, j int) bool {
			a, b := s.frames[i].frameNum, s.frames[j].frameNum
			if a != b {
				return a < b
			}
			return s.frames[i].name < s.frames[j].name
		})
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// seqHold is why a sequence may not be sent yet, and which of its frames that holds (nil:
// every frame).
type seqHold struct {
	code, msg string
	only      []*fileState
}

// judgeSequence is the hold policy for one sequence of a complete request, a pure function of
// the sequence and the request's fields: frames missing inside the expected range (the
// request's frames field, else from the first frame to the last), frames outside that range,
// and suspect frames when the profile asks for them.
func judgeSequence(s *sequence, fields map[string]string, suspect bool) *seqHold {
	numbers := make([]int64, len(s.frames))
	for i, fs := range s.frames {
		numbers[i] = fs.frameNum
	}
	numbers = matcher.SortFrames(numbers)
	name := s.name()
	first, last := numbers[0], numbers[len(numbers)-1]
	if v, ok := fields["frames"]; ok && strings.TrimSpace(v) != "" {
		lo, hi, err := matcher.ParseFrameRange(v)
		if err != nil {
			return &seqHold{code: "invalid_metadata", msg: fmt.Sprintf("the request's %v; hotdrop cannot tell whether %s is whole", err, name)}
		}
		if out := matcher.Outside(numbers, lo, hi); len(out) > 0 {
			return &seqHold{code: ReasonIncompleteSequence, msg: fmt.Sprintf("%s has %d frame(s) outside the request's frames %d-%d: %s; remove them or ask the studio to widen the range",
				name, matcher.CountRanges(out), lo, hi, matcher.FormatRanges(out))}
		}
		first, last = lo, hi
	} else if allowGaps(fields) {
		first, last = 0, -1 // nothing is missing
	}
	if first <= last {
		if miss := matcher.Missing(numbers, first, last); len(miss) > 0 {
			return &seqHold{code: ReasonIncompleteSequence, msg: fmt.Sprintf("%s is missing %d frame(s): %s; a sequence is sent only whole (a render node may have died mid-shot). "+
				"Render the missing frames, or ask the studio to set allow_gaps = true on the request if the gaps are meant", name, matcher.CountRanges(miss), matcher.FormatRanges(miss))}
		}
	}
	if suspect {
		if bad := suspectFrames(s.frames); len(bad) > 0 {
			fs := bad[0]
			return &seqHold{code: ReasonSuspectFrame, only: bad, msg: fmt.Sprintf("%s: %d frame(s) are empty or much smaller than the frames around them (%s is %s); "+
				"a render node may have died while writing them. Render them again; if they are right as they are, set suspect_frames = false in the source type's profile",
				name, len(bad), fs.name, HumanBytes(fs.rec.Size))}
		}
	}
	return nil
}

// allowGaps reads the request's allow_gaps field.
func allowGaps(fields map[string]string) bool {
	b, err := strconv.ParseBool(strings.TrimSpace(fields["allow_gaps"]))
	return err == nil && b
}

// suspectNeighbours is how many frames on each side a frame is compared with.
const suspectNeighbours = 4

// suspectFrames are the frames (sorted by number) that are empty, or under a tenth of the
// median size of the frames on each side of them. Both sides must agree, so the first black
// frame after a cut, small beside the picture before it and like the black frames after it,
// is not suspect.
func suspectFrames(frames []*fileState) []*fileState {
	var out []*fileState
	median := func(lo, hi int) (int64, bool) {
		lo, hi = max(lo, 0), min(hi, len(frames))
		if lo >= hi {
			return 0, false
		}
		sizes := make([]int64, 0, hi-lo)
		for _, fs := range frames[lo:hi] {
			sizes = append(sizes, fs.rec.Size)
		}
		slices.Sort(sizes)
		return sizes[len(sizes)/2], true
	}
	for i, fs := range frames {
		size := fs.rec.Size
		if size == 0 {
			out = append(out, fs)
			continue
		}
		left, okL := median(i-suspectNeighbours, i)
		right, okR := median(i+1, i+1+suspectNeighbours)
		if !okL && !okR {
			continue
		}
		if (!okL || size*10 < left) && (!okR || size*10 < right) {
			out = append(out, fs)
		}
	}
	return out
}

// HumanBytes prints a size in binary units (12.0 KiB), as the config's bandwidth takes them.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// holdSequences holds the ready frames of every sequence of a complete request that may not
// be sent, and reports whether it held any.
func (e *Engine) holdSequences(r *reqState, files []*fileState) bool {
	_, framesGiven := r.Fields["frames"]
	held := false
	for _, s := range sequencesOf(files, framesGiven) {
		h := judgeSequence(s, r.Fields, r.suspect)
		if h == nil {
			continue
		}
		targets := s.frames
		if h.only != nil {
			targets = h.only
		}
		for _, fs := range targets {
			if fs.rec.State == Ready {
				e.hold(fs, h.code, h.msg)
				held = true
			}
		}
	}
	return held
}

// maxListedFiles bounds the files a view lists one by one (frames of sequences aside): a
// request of 100,000 files would make every status file and page tens of megabytes.
const maxListedFiles = 500

// Summarize groups a request's files for a view: the frames of each sequence into one
// SequenceView, the rest listed by name, past maxListedFiles only those that most need
// attention (failed, held, uploading, ready, settling, then delivered). framesGiven is whether
// the request has a frames field (then one frame alone is a sequence). The engine's views and
// `hotdrop status` without a daemon (from the journal) both use it.
func Summarize(files []FileView, framesGiven bool) (singles []FileView, seqs []SequenceView, omitted int) {
	items := make([]viewFile, len(files))
	for i := range files {
		items[i].v = &files[i]
		items[i].frame, items[i].isFrame = matcher.SplitFrame(files[i].Name)
	}
	idx, seqs, omitted := summarize(items, framesGiven)
	singles = make([]FileView, len(idx))
	for i, j := range idx {
		singles[i] = files[j]
	}
	return singles, seqs, omitted
}

// summaryFile is what summarize reads of one file: the Engine's own (*fileState), or a view
// (viewFile, for Summarize). It reads them where they are: copying 100,000 frames into a
// buffer of items for each view kept 18 MB alive and made as much garbage a second (issue
// 11); and a view's worth is built only for the files shown on their own.
type summaryFile interface {
	frameOf() (matcher.Frame, bool)
	summary() summaryItem
}

// summaryItem is what summarize needs of a file besides its frame.
type summaryItem struct {
	name            string
	state           State
	reason, message string
	size, done      int64
	changedAt       time.Time
}

func (fs *fileState) summary() summaryItem {
	return summaryItem{name: fs.name, state: fs.rec.State, reason: fs.rec.Reason, message: fs.rec.Message, size: fs.rec.Size,
		done: fs.done, changedAt: fs.rec.UpdatedAt}
}

// viewFile is a FileView as summarize reads it, its frame read once.
type viewFile struct {
	v       *FileView
	frame   matcher.Frame
	isFrame bool
}

func (f viewFile) frameOf() (matcher.Frame, bool) { return f.frame, f.isFrame }

func (f viewFile) summary() summaryItem {
	v := f.v
	return summaryItem{name: v.Name, state: v.State, reason: v.Reason, message: v.Message, size: v.Size, done: v.Done, changedAt: v.ChangedAt}
}

// summarize is Summarize over files: it returns the sequences, and the indexes of the files
// listed on their own (at most maxListedFiles, the ones needing attention first, by name).
func summarize[F summaryFile](files []F, framesGiven bool) (singles []int, seqs []SequenceView, omitted int) {
	groups := groupFrames(files)
	inSeq := make([]bool, len(files))
	keys := make([]string, 0, len(groups))
	for k, g := range groups {
		if len(g.members) >= 2 || framesGiven {
			keys = append(keys, k)
			for _, i := range g.members {
				inSeq[i] = true
			}
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		seqs = append(seqs, sequenceOf(files, groups[k]))
	}
	singles, omitted = listSingles(files, inSeq)
	return singles, seqs, omitted
}

// frameGroup is the frames of one would-be sequence: their indexes and frame numbers.
type frameGroup struct {
	frame   matcher.Frame
	members []int
	numbers []int64
}

// groupFrames groups the frames among files by sequence key; the narrowest padding seen
// names the sequence.
func groupFrames[F summaryFile](files []F) map[string]*frameGroup {
	groups := map[string]*frameGroup{}
	var g *frameGroup // the last frame's: its neighbour is most often of the same sequence
	for i, f := range files {
		fr, ok := f.frameOf()
		if !ok {
			continue
		}
		if g == nil || g.frame.Key != fr.Key {
			if g = groups[fr.Key]; g == nil {
				g = &frameGroup{frame: fr}
				groups[fr.Key] = g
			}
		}
		g.members = append(g.members, i)
		g.numbers = append(g.numbers, fr.Number)
		if fr.Width < g.frame.Width {
			g.frame.Width = fr.Width
		}
	}
	return groups
}

// sequenceOf is one sequence's row: its range, sizes, counts, and the reason of its first
// frame held or failed.
func sequenceOf[F summaryFile](files []F, g *frameGroup) SequenceView {
	slices.Sort(g.numbers)
	sv := SequenceView{First: g.numbers[0], Last: g.numbers[len(g.numbers)-1], Frames: len(g.members)}
	sv.Name = matcher.SequenceName(g.frame, sv.First, sv.Last, g.frame.Width)
	var counts stateCounts // not a map: counted once per frame
	var reasonAt int64
	for _, i := range g.members {
		f := files[i].summary()
		sv.Size += f.size
		counts.n[stateIndex(f.state)]++
		switch f.state {
		case Delivered:
			sv.Delivered++
			sv.DeliveredSize += f.size
		case Uploading:
			sv.Done += f.done
		case Held, Failed:
			fr, _ := files[i].frameOf()
			if n := fr.Number; sv.Reason == "" || n < reasonAt {
				sv.Reason, sv.Message, reasonAt = f.reason, f.message, n
			}
		}
		if f.changedAt.After(sv.ChangedAt) {
			sv.ChangedAt = f.changedAt
		}
	}
	sv.Counts = counts.asMap()
	sv.State = stateOfCounts(sv.Counts, sv.Frames)
	return sv
}

// listSingles picks the files shown on their own (not in a sequence): at most
// maxListedFiles, the ones needing attention first, listed by name; omitted is the rest.
func listSingles[F summaryFile](files []F, inSeq []bool) (singles []int, omitted int) {
	type single struct {
		i         int
		attention int
		name      string
	}
	var ss []single
	for i := range files {
		if !inSeq[i] {
			f := files[i].summary()
			ss = append(ss, single{i, attention(f.state), f.name})
		}
	}
	if len(ss) > maxListedFiles {
		sort.SliceStable(ss, func(i, j int) bool {
			if a, b := ss[i].attention, ss[j].attention; a != b {
				return a < b
			}
			return ss[i].name < ss[j].name
		})
		omitted = len(ss) - maxListedFiles
		ss = ss[:maxListedFiles]
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].name < ss[j].name })
	for _, s := range ss {
		singles = append(singles, s.i)
	}
	return singles, omitted
}

// attention orders states by how much they need a person: failed first, delivered last.
func attention(s State) int {
	switch s {
	case Failed:
		return 0
	case Held:
		return 1
	case Uploading:
		return 2
	case Ready:
		return 3
	case Settling:
		return 4
	case Waiting:
		return 5
	}
	return 6
}

// stateOfCounts derives a group's state from how many of its n files are in each state, as a
// request's is (SPEC.md: held if any is held, failed if any failed, uploading once any is,
// delivered when all are).
func stateOfCounts(c map[State]int, n int) State {
	switch {
	case c[Failed] > 0:
		return Failed
	case c[Held] > 0:
		return Held
	case c[Uploading] > 0:
		return Uploading
	case n > 0 && c[Delivered] == n:
		return Delivered
	case c[Settling] > 0:
		return Settling
	case c[Ready] > 0:
		return Ready
	}
	return Waiting
}

// sequenceMilestones announces each sequence's milestones — started, delivered, held — as
// its frames move: webhooks and the tracker get these instead of one event per frame. quiet
// records where each sequence stands without announcing it (the first look after a start).
func (e *Engine) sequenceMilestones(r *reqState, files []*fileState, quiet bool) {
	groups := milestoneGroups(files)
	if groups == nil && len(r.milestones) == 0 {
		return
	}
	if r.milestones == nil {
		r.milestones = map[string]string{}
	}
	for key := range r.milestones {
		if groups[key] == nil {
			delete(r.milestones, key) // its frames are gone
		}
	}
	for key, g := range groups {
		typ, released := nextMilestone(r.milestones[key], stateOfCounts(g.counts.asMap(), g.n))
		if released {
			r.milestones[key] = "" // released: the next start is news again
		}
		if typ == "" {
			continue
		}
		r.milestones[key] = typ
		if quiet {
			continue
		}
		ev := Event{Type: typ, Request: &EventRequest{ID: r.ID, State: string(r.state), Status: r.Status},
			Sequence: &EventSequence{Key: key, Name: matcher.SequenceName(g.frame, g.first, g.last, g.frame.Width),
				Frames: g.n, Delivered: g.delivered, Size: g.size}}
		if typ == EventSequenceHeld {
			ev.Reason = &EventReason{Code: g.reason, Message: g.message}
			e.log.Warn("sequence held", "request", r.ID, "sequence", ev.Sequence.Name, "frames", g.n, "delivered", g.delivered,
				"reason", g.reason, "message", g.message)
		} else {
			e.log.Info(strings.Replace(typ, ".", " ", 1), "request", r.ID, "sequence", ev.Sequence.Name, "frames", g.n,
				"delivered", g.delivered, "bytes", g.size)
		}
		e.emit(ev)
	}
}

// milestoneGroup is one sequence of a request, as its milestones are judged.
type milestoneGroup struct {
	frame           matcher.Frame
	first, last     int64
	counts          stateCounts
	n, delivered    int
	size            int64
	reason, message string // the hold or failure of its lowest frame held or failed
	reasonAt        int64
}

// milestoneGroups groups a request's frames by sequence (nil: none).
func milestoneGroups(files []*fileState) map[string]*milestoneGroup {
	var groups map[string]*milestoneGroup
	var g *milestoneGroup // the last frame's: its neighbour is most often of the same sequence
	for _, fs := range files {
		f, ok := fs.frameOf()
		if !ok {
			continue
		}
		if groups == nil {
			groups = map[string]*milestoneGroup{}
		}
		if g == nil || g.frame.Key != f.Key { // one string when equal (frameOf interns keys)
			if g = groups[f.Key]; g == nil {
				g = &milestoneGroup{frame: f, first: f.Number, last: f.Number}
				groups[f.Key] = g
			}
		}
		g.first, g.last = min(g.first, f.Number), max(g.last, f.Number)
		g.frame.Width = min(g.frame.Width, f.Width)
		st := fs.rec.State
		g.counts.n[stateIndex(st)]++
		g.n++
		g.size += fs.rec.Size
		if st == Delivered {
			g.delivered++
		}
		if (st == Held || st == Failed) && (g.reason == "" || f.Number < g.reasonAt) {
			g.reason, g.message, g.reasonAt = fs.rec.Reason, fs.rec.Message, f.Number
		}
	}
	return groups
}

// nextMilestone is the milestone event a sequence in state st makes after was ("" for none),
// and whether a hold was released (so that its next start is news again).
func nextMilestone(was string, st State) (typ string, released bool) {
	var next string
	switch st {
	case Uploading:
		next = EventSequenceStarted
	case Delivered:
		next = EventSequenceDelivered
	case Held, Failed:
		next = EventSequenceHeld
	default:
		return "", was == EventSequenceHeld
	}
	if was == next {
		return "", false
	}
	return next, false
}

// FrameFile is one frame as `hotdrop explain` sees it: its name (slash path inside the drop
// folder) and size.
type FrameFile struct {
	Name string
	Size int64
}

// CheckSequence is the hold policy the daemon applies to one sequence of a complete request
// (judgeSequence), for `hotdrop explain`: the hold code and sentence, or "" when the sequence
// may be sent. fields are the request's (frames, allow_gaps); suspect is the profile's
// suspect_frames.
func CheckSequence(frames []FrameFile, fields map[string]string, suspect bool) (code, message string) {
	files := make([]*fileState, len(frames))
	for i, f := range frames {
		files[i] = &fileState{name: f.Name, rec: FileRecord{Size: f.Size}}
	}
	_, framesGiven := fields["frames"]
	for _, s := range sequencesOf(files, framesGiven) {
		if h := judgeSequence(s, fields, suspect); h != nil {
			return h.code, h.msg
		}
	}
	return "", ""
}
