package manager

import (
	"fmt"
	"testing"
	"time"

	"github.com/xenvtpm/xenvtpm/mgrdomain/proto"
	"github.com/xenvtpm/xenvtpm/mgrdomain/saa"
	"github.com/xenvtpm/xenvtpm/mgrdomain/store"
)

// BenchmarkGroups: a manager with 1, 16 and 256 groups, each with an SAA
// key and a one-approval list, on swtpm (TPM 2.0). One iteration is a
// GROUP_UPDATE of group 0 (the storage key sealed to its approvals: a
// header write, a store commit, the approval counter moved) and one of
// the last group (a store commit only). Reported: their times, hardware
// TPM commands and NV writes each, the manager's start with that many
// groups, and the store records a group takes.
func BenchmarkGroups(b *testing.B) {
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("groups=%d", n), func(b *testing.B) {
			hw, ct := countedHW(b)
			d := newMemDisk(4096, 8<<20)
			m := openMgr(b, d, hw, Config{})
			k, wire := saaKey(b, "ecdsa")
			pcrs := []uint{0, 7}
			vals := pcrValues(b, hw, pcrs)
			a := approvalFor(b, saa.Family20, pcrs, vals)
			uuids := map[uint32][16]byte{}
			for range n {
				u, id, err := m.GroupNew(proto.GroupNew{SAAKey: wire})
				if err != nil {
					b.Fatal(err)
				}
				uuids[id] = u
				info, _ := m.GroupShow(id)
				if err := m.GroupUpdate(id, signList(b, k, saa.Family20, u, info.NextSeq, a)); err != nil {
					b.Fatal(err)
				}
			}
			last := uint32(n - 1)
			// The lists are signed before the clock runs.
			type upd struct {
				id   uint32
				list []byte
			}
			var todo []upd
			next := map[uint32]uint64{}
			for _, id := range []uint32{0, last} {
				info, _ := m.GroupShow(id)
				next[id] = info.NextSeq
			}
			for i := range b.N {
				todo = append(todo, upd{0, signList(b, k, saa.Family20, uuids[0], next[0]+uint64(i), a)})
				if n > 1 {
					todo = append(todo, upd{last, signList(b, k, saa.Family20, uuids[last], next[last]+uint64(i), a)})
				}
			}
			var dur [2]time.Duration
			var cmds, writes [2]int64
			b.ResetTimer()
			for _, u := range todo {
				j := 0
				if u.id != 0 {
					j = 1
				}
				a0 := mustCounter(b, hw)
				c0, w0 := ct.n.Load(), m.Stats().HWWrites
				t0 := time.Now()
				if err := m.GroupUpdate(u.id, u.list); err != nil {
					b.Fatal(err)
				}
				dur[j] += time.Since(t0)
				cmds[j] += ct.n.Load() - c0
				writes[j] += int64(m.Stats().HWWrites-w0) + int64(mustCounter(b, hw)-a0)
			}
			b.StopTimer()
			per := func(x int64) float64 { return float64(x) / float64(b.N) }
			b.ReportMetric(float64(dur[0].Microseconds())/1000/float64(b.N), "ms/update-group0")
			b.ReportMetric(per(cmds[0]), "TPM-cmds/update-group0")
			b.ReportMetric(per(writes[0]), "NV-writes/update-group0")
			if n > 1 {
				b.ReportMetric(float64(dur[1].Microseconds())/1000/float64(b.N), "ms/update-groupN")
				b.ReportMetric(per(cmds[1]), "TPM-cmds/update-groupN")
				b.ReportMetric(per(writes[1]), "NV-writes/update-groupN")
			}
			recs := 0
			m.st.Range(func(u store.UUID, _ store.Record) bool {
				if isReserved(u) {
					recs++
				}
				return true
			})
			b.ReportMetric(float64(recs)/float64(n), "records/group")
			m.Close()
			c0 := ct.n.Load()
			t0 := time.Now()
			m2 := openMgr(b, d, hw, Config{})
			b.ReportMetric(float64(time.Since(t0).Microseconds())/1000, "ms/open")
			b.ReportMetric(float64(ct.n.Load()-c0), "TPM-cmds/open")
			if got := m2.Stats().Groups; got != n {
				b.Fatalf("%d groups after reopening, want %d", got, n)
			}
			m2.Close()
		})
	}
}

func mustCounter(b *testing.B, hw interface{ ApprovalCounter() (uint64, error) }) uint64 {
	c, err := hw.ApprovalCounter()
	if err != nil {
		b.Fatal(err)
	}
	return c
}
