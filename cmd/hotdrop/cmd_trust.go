package main

import (
	"fmt"
	"io"
)

// cmdTrust is `hotdrop trust`. It is not built yet; see the open issues.
func cmdTrust(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("'hotdrop trust' is not built in this version yet")
}
