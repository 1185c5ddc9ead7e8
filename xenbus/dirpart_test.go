package xenbus

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/xenvtpm/xenvtpm/xenbus/xswire"
)

// bigDir puts n children under /big: with 10-byte names, 1000 of them are
// 11,000 bytes of list, more than one reply carries.
func bigDir(s *fakeStore, n int) []string {
	var want []string
	for i := range n {
		name := fmt.Sprintf("child-%04d", i)
		s.write("/big/"+name, "x")
		want = append(want, name)
	}
	return want
}

func TestDirectoryInParts(t *testing.T) {
	c, s, _ := storeClient(t)
	ctx := testCtx(t)
	want := bigDir(s, 1000)
	got, err := c.Directory(ctx, "/big")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Directory returned %d names, want %d in order", len(got), len(want))
	}
	parts := s.Stats().DirParts
	if parts < 3 {
		t.Fatalf("%d XS_DIRECTORY_PART requests for 11,000 bytes of names", parts)
	}
	t.Logf("1000 children in %d parts", parts)

	// A child added between two parts: the listing starts over and has it.
	calls := 0
	s.OnDirPart(func() {
		if calls++; calls == 2 {
			s.Write("/big/child-new", "x")
		}
	})
	got, err = c.Directory(ctx, "/big")
	if err != nil || len(got) != 1001 || !slices.Contains(got, "child-new") {
		t.Fatalf("Directory with a child added between parts: %d names, %v", len(got), err)
	}

	// A directory that never holds still: a bounded number of restarts.
	s.OnDirPart(func() {
		calls++
		s.Write(fmt.Sprintf("/big/churn-%d", calls), "x")
	})
	if _, err := c.Directory(ctx, "/big"); !errors.Is(err, xswire.ErrAgain) {
		t.Fatalf("Directory of an ever-changing node = %v, want EAGAIN", err)
	}
}

func TestParseDirectoryPart(t *testing.T) {
	for _, c := range []struct {
		in   string
		want xswire.DirectoryPart
	}{
		{"7\x00a\x00bc\x00", xswire.DirectoryPart{Generation: "7", Names: []string{"a", "bc"}, Len: 5}},
		{"7\x00a\x00bc\x00\x00", xswire.DirectoryPart{Generation: "7", Names: []string{"a", "bc"}, Len: 5, Last: true}},
		{"12\x00\x00", xswire.DirectoryPart{Generation: "12", Last: true}},
	} {
		got, err := xswire.ParseDirectoryPart([]byte(c.in))
		if err != nil || got.Generation != c.want.Generation || !slices.Equal(got.Names, c.want.Names) || got.Len != c.want.Len || got.Last != c.want.Last {
			t.Errorf("ParseDirectoryPart(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "\x00", "7", "7\x00", "x\x00a\x00", "7\x00a", "7\x00a/b\x00", "7\x00\x00\x00\x00", "7\x00a\x00\x00\x00"} {
		if _, err := xswire.ParseDirectoryPart([]byte(in)); !errors.Is(err, xswire.ErrProtocol) {
			t.Errorf("ParseDirectoryPart(%q) = %v, want ErrProtocol", in, err)
		}
	}
}
