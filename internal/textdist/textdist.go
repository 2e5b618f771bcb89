// Package textdist measures how far apart two short names are, so that an error can say
// "did you mean settle?" for a misspelt config key or sidecar field. It is for short ASCII
// names only, not for prose.
package textdist

// Levenshtein is the edit distance between a and b, in bytes (names are ASCII).
func Levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
