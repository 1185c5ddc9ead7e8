package xenbus_test

import (
	"context"
	"fmt"
	"time"

	"github.com/xenvtpm/xenvtpm/board/xen/shm"
	"github.com/xenvtpm/xenvtpm/xenbus"
)

// Inside a domain: the ring page is the frame named by HVM_PARAM_STORE_PFN,
// notify sends on HVM_PARAM_STORE_EVTCHN, and wake is that port's wake-up
// channel from the event channel layer. (Not run: it needs Xen.)
func ExampleNewRing() {
	var (
		page   *shm.Page     // shm.At(storePFN<<12, 4096), in board code
		notify func() error  // send on the store event channel
		wake   chan struct{} // fires when that event channel does
	)
	ring, err := xenbus.NewRing(page, notify, wake)
	if err != nil {
		panic(err)
	}
	xs := xenbus.NewClient(ring, xenbus.WithErrorHandler(func(err error) { fmt.Println(err) }))
	defer xs.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	domid, err := xs.ReadInt(ctx, "domid") // relative: /local/domain/<self>/domid
	if err != nil {
		panic(err)
	}
	fmt.Println("domid", domid)
}

// A backend announcing itself and waiting for its frontend.
func ExampleClient_WaitForState() {
	var xs *xenbus.Client
	ctx := context.Background()
	be := "/local/domain/0/backend/vtpm/5/0"
	if err := xs.SwitchState(ctx, be, xenbus.StateInitWait); err != nil {
		panic(err)
	}
	fe, _ := xs.ReadString(ctx, be+"/frontend")
	st, err := xs.WaitForState(ctx, fe, xenbus.StateInitialised, xenbus.StateConnected)
	if err != nil {
		panic(err)
	}
	fmt.Println("frontend is", st)
}

// Writing the frontend's ring details atomically, retried on conflicts.
func ExampleClient_Transaction() {
	var xs *xenbus.Client
	ctx := context.Background()
	dev := "device/vtpm/0"
	err := xs.Transaction(ctx, func(tx *xenbus.Tx) error {
		if err := tx.WriteString(ctx, dev+"/ring-ref", "8"); err != nil {
			return err
		}
		if err := tx.WriteString(ctx, dev+"/event-channel", "5"); err != nil {
			return err
		}
		return tx.WriteString(ctx, dev+"/feature-protocol-v2", "1")
	})
	if err != nil {
		panic(err)
	}
}
