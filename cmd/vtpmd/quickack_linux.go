package main

import (
	"net"
	"syscall"
)

// quickAck makes every read on a TCP connection acknowledge at once.
// tcti-mssim sends a command's frame header and its body in two writes;
// with Nagle's algorithm on the client the body waits for the header's
// ACK, which Linux delays by up to 40 ms unless the receiver asks for a
// quick ACK. Linux leaves quick-ACK mode by itself, so it is asked for
// again after each read.
func quickAck(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if _, tcp := c.LocalAddr().(*net.TCPAddr); !ok || !tcp {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return quickAckConn{c, rc}
}

type quickAckConn struct {
	net.Conn
	rc syscall.RawConn
}

func (q quickAckConn) Read(b []byte) (int, error) {
	n, err := q.Conn.Read(b)
	_ = q.rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
	return n, err
}
