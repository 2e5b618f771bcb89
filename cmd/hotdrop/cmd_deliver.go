package main

import (
	"fmt"
	"io"
)

// cmdDeliver is `hotdrop deliver`. It is not built yet; see the open issues.
func cmdDeliver(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("'hotdrop deliver' is not built in this version yet")
}
