//go:build !tamago

package domain

import (
	"fmt"
	"os"
)

// RefuseHost is the main of an image package built for the host: the
// images run only as Xen PVH domains (GOOS=tamago), and the host build
// exists so that `go vet` and `go test` can load every package.
func RefuseHost(image string) {
	fmt.Fprintf(os.Stderr, "%s is a Xen PVH domain image: build it with `make images`\n", image)
	os.Exit(2)
}
