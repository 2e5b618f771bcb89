package main

import (
	"fmt"
	"io"
)

// cmdSend is `hotdrop send`. It is not built yet; see the open issues.
func cmdSend(args []string, stdout, stderr io.Writer) error {
	return fmt.Errorf("'hotdrop send' is not built in this version yet")
}
