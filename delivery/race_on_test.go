//go:build race

package delivery

// raceEnabled: the race detector drops sync.Pool's items at random, so allocation counts
// that rely on pooled buffers do not hold under it.
const raceEnabled = true
