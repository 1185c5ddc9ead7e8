package xen

import "fmt"

// Errno is a negative return value of a hypercall (xen/include/public/errno.h).
type Errno int64

var errnoNames = map[Errno]string{
	1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO",
	7: "E2BIG", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES",
	14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV", 22: "EINVAL",
	28: "ENOSPC", 34: "ERANGE", 38: "ENOSYS", 95: "EOPNOTSUPP",
}

func (e Errno) Error() string {
	if n, ok := errnoNames[e]; ok {
		return fmt.Sprintf("xen: %s (-%d)", n, int64(e))
	}
	return fmt.Sprintf("xen: error -%d", int64(e))
}

// Result converts a raw hypercall return value to an error.
func Result(op string, rc int64) error {
	if rc >= 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", op, Errno(-rc))
}
