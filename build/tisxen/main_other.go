//go:build !tamago

package main

import (
	"fmt"
	"os"
)

// The image runs only as a Xen PVH domain (GOOS=tamago); elsewhere the
// package builds so that its option checks are tested on the host.
func main() {
	fmt.Fprintln(os.Stderr, "tisxen is a Xen PVH domain image: build it with `make OUT=dir dir/tisxen`")
	os.Exit(2)
}
