package main

import (
	"fmt"
	"io"
)

// cmdService is `hotdrop service`. It is not built yet; see the open issues.
func cmdService(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("'hotdrop service' is not built in this version yet")
}
