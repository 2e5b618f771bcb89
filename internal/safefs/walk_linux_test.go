package safefs

import "testing"

// TestComponentWalk runs the refusals again without openat2, as on kernels before 5.6 and on
// the other unix systems.
func TestComponentWalk(t *testing.T) {
	was := noOpenat2.Swap(true)
	t.Cleanup(func() { noOpenat2.Store(was) })
	t.Run("links", TestOpenRefusesALinkAtAnyLevel)
	t.Run("special", TestOpenRefusesLinksFIFOsAndFolders)
	t.Run("dir", TestDirActsWhereItWasOpened)
	t.Run("mkdir", TestMkdirAllRefusesALink)
}
