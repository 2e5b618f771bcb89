package main

import (
	"fmt"
	"io"
)

// cmdInit is `hotdrop init`. It is not built yet; see the open issues.
func cmdInit(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("'hotdrop init' is not built in this version yet")
}
