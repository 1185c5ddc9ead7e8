package vstate

import (
	"fmt"
	"testing"
)

func BenchmarkSave(b *testing.B) {
	for _, n := range []int{16 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", n>>10), func(b *testing.B) {
			dev, mgr := newMemDev(4096, 2*(128<<10)/4096), &fakeMgr{}
			s, err := New(Config{Device: dev, Manager: mgr, SlotSize: 128 << 10})
			if err != nil {
				b.Fatal(err)
			}
			s.Load()
			state := testState(n, 1)
			if err := s.Save(state); err != nil { // the first save's marker aside
				b.Fatal(err)
			}
			before := s.Stats()
			b.SetBytes(int64(n))
			b.ResetTimer()
			for b.Loop() {
				if err := s.Save(state); err != nil {
					b.Fatal(err)
				}
			}
			st := s.Stats()
			saves := float64(st.Saves - before.Saves)
			b.ReportMetric(float64(st.BytesWritten-before.BytesWritten)/saves, "disk-B/save")
			b.ReportMetric(float64(st.Disk-before.Disk)/saves, "disk-ns/save")
			b.ReportMetric(float64(st.Manager-before.Manager)/saves, "mgr-ns/save")
		})
	}
}
