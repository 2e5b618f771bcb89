package main

import (
	"fmt"
	"io"
)

// cmdStatus is `hotdrop status`. It is not built yet; see the open issues.
func cmdStatus(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("'hotdrop status' is not built in this version yet")
}
