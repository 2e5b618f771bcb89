package main

import (
	"fmt"
	"io"
)

// cmdRetry is `hotdrop retry`. It is not built yet; see the open issues.
func cmdRetry(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("'hotdrop retry' is not built in this version yet")
}
