module github.com/xenvtpm/xenvtpm

go 1.26.0

require (
	github.com/google/go-tpm v0.9.8
	github.com/usbarmory/tamago v1.26.0 // indirect
	golang.org/x/crypto v0.58.0
	golang.org/x/sys v0.49.0 // indirect
)

tool github.com/usbarmory/tamago/cmd/tamago
