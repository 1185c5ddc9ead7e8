// Package dom0 is the platform for a Go program in a Linux control domain
// (dom0) that plays a Xen PV frontend, as board/xen/pvh is for a tamago
// domain: xenstore through xenstored's Unix socket, event channels through
// the kernel's /dev/xen/evtchn (include/uapi/xen/evtchn.h) and shared pages
// through /dev/xen/gntalloc (include/uapi/xen/gntalloc.h). It hands the
// drivers the same types they use inside a domain (*xenbus.Client,
// *evtchn.Mux, a grant.Sharer), so drivers/tpmfront runs unchanged in dom0.
//
// dom0 needs the xen-evtchn and xen-gntalloc modules loaded (Debian builds
// them as modules) and runs as root.
package dom0
