package matcher

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Frame is what a file's name says about its place in a frame sequence: render farms write
// one file per frame (shot_010.1001.exr … shot_010.2400.exr), and files whose names differ
// only by that number are one sequence (SPEC.md, Frame sequences).
type Frame struct {
	// Key is the same for every frame of one sequence: the name with its number taken out
	// ("plates/shot_010.#.exr"). Frames of different padding belong together (999, 1000).
	Key string
	// Prefix and Suffix surround the number: "plates/shot_010." and ".exr".
	Prefix, Suffix string
	Number         int64
	Width          int // digits as written, padding included
}

// maxFrameDigits bounds a frame number; longer digit runs are not frame numbers (dates,
// ids) and would overflow.
const maxFrameDigits = 9

// SplitFrame reads a frame number out of a slash path: the last run of digits of the base
// name before its extension, after a '.' or '_' and after at least one other character, in a
// format render farms write as sequences (EXR, DPX, TIFF, PNG, JPEG…). Anything else is not a
// frame.
func SplitFrame(name string) (Frame, bool) {
	dir, base := path.Split(name)
	dot := strings.LastIndexByte(base, '.')
	if dot <= 0 || !IsImageSequenceExt(base[dot+1:]) {
		return Frame{}, false
	}
	stem := base[:dot]
	i := len(stem)
	for i > 0 && stem[i-1] >= '0' && stem[i-1] <= '9' {
		i--
	}
	digits := stem[i:]
	if len(digits) == 0 || len(digits) > maxFrameDigits || i < 2 || (stem[i-1] != '.' && stem[i-1] != '_') {
		return Frame{}, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return Frame{}, false
	}
	prefix, suffix := dir+stem[:i], base[dot:]
	return Frame{Key: prefix + "#" + strings.ToLower(suffix), Prefix: prefix, Suffix: suffix, Number: n, Width: len(digits)}, true
}

// sequenceExt are the formats written as frame sequences.
var sequenceExt = map[string]bool{}

func init() {
	for _, e := range imageExt {
		sequenceExt[e] = true
	}
}

// IsImageSequenceExt reports whether files with extension ext (no dot, any case) may be frames.
func IsImageSequenceExt(ext string) bool { return sequenceExt[strings.ToLower(ext)] }

// SequenceName shows a sequence as one name: shot_010.[1001-2400].exr.
func SequenceName(f Frame, first, last int64, width int) string {
	return fmt.Sprintf("%s[%0*d-%0*d]%s", f.Prefix, width, first, width, last, f.Suffix)
}

// ParseFrameRange reads a request's frames field: "1001-2400" (or one frame, "1001").
func ParseFrameRange(s string) (first, last int64, err error) {
	s = strings.TrimSpace(s)
	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}
	first, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	last, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first || last-first > 1e8 {
		return 0, 0, fmt.Errorf("frames = %q: expected a range of frame numbers such as \"1001-2400\"", s)
	}
	return first, last, nil
}

// Missing lists the numbers in [first, last] that are not in have (sorted, no duplicates), as
// ranges.
func Missing(have []int64, first, last int64) [][2]int64 {
	var out [][2]int64
	next := first
	for _, n := range have {
		if n < first {
			continue
		}
		if n > last {
			break
		}
		if n > next {
			out = append(out, [2]int64{next, n - 1})
		}
		next = n + 1
	}
	if next <= last {
		out = append(out, [2]int64{next, last})
	}
	return out
}

// Outside lists the numbers of have (sorted) that are not in [first, last], as ranges.
func Outside(have []int64, first, last int64) [][2]int64 {
	var out [][2]int64
	for _, n := range have {
		if n >= first && n <= last {
			continue
		}
		if k := len(out); k > 0 && out[k-1][1] == n-1 {
			out[k-1][1] = n
			continue
		}
		out = append(out, [2]int64{n, n})
	}
	return out
}

// maxRangesShown bounds how many ranges a hold's sentence names.
const maxRangesShown = 12

// FormatRanges writes ranges the way people read them: "1203, 1877-1880".
func FormatRanges(rs [][2]int64) string {
	var b strings.Builder
	for i, r := range rs {
		if i == maxRangesShown {
			fmt.Fprintf(&b, " and %d more ranges", len(rs)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if r[0] == r[1] {
			fmt.Fprint(&b, r[0])
		} else {
			fmt.Fprintf(&b, "%d-%d", r[0], r[1])
		}
	}
	return b.String()
}

// CountRanges is how many numbers ranges hold.
func CountRanges(rs [][2]int64) int64 {
	var n int64
	for _, r := range rs {
		n += r[1] - r[0] + 1
	}
	return n
}

// SortFrames sorts frame numbers and drops duplicates (one number written with two paddings).
func SortFrames(ns []int64) []int64 {
	slices.Sort(ns)
	return slices.Compact(ns)
}
