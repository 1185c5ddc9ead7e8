//go:build tamago && !linkprintk

package q35

import _ "unsafe"

//go:linkname printk runtime/goos.Printk
func printk(c byte) {
	UART0.Tx(c)
}
