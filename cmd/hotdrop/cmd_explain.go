package main

import (
	"fmt"
	"io"
)

// cmdExplain is `hotdrop explain`. It is not built yet; see the open issues.
func cmdExplain(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("'hotdrop explain' is not built in this version yet")
}
