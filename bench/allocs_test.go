package bench

import (
	"strings"
	"testing"
)

func TestParseBenchOutputReadsResultLines(t *testing.T) {
	out := []byte(`goos: linux
goarch: amd64
pkg: github.com/iacc/iacc/api
cpu: Intel(R) Xeon(R) Processor
BenchmarkCreatePurchaseOrder-2   	    1917	   1043512 ns/op	       958.3 orders/s	   41234 B/op	     402 allocs/op
BenchmarkCachedRead/pipelined-2  	   25340	     78912 ns/op	     12672 reads/s	    4870 B/op	      33 allocs/op
BenchmarkCachedRead/direct       	   30000	     66000 ns/op	    4100 B/op	      28 allocs/op
BenchmarkBroken-2   	 abc	 12 ns/op
BenchmarkOdd-2   	 10	 12 ns/op	 7
--- FAIL: BenchmarkOther
PASS
ok  	github.com/iacc/iacc/api	9.412s
`)
	got := parseBenchOutput(out)
	if len(got) != 3 {
		t.Fatalf("got %d results, want 3: %+v", len(got), got)
	}
	want := []struct {
		name   string
		n      int64
		ns     float64
		bytes  float64
		allocs float64
	}{
		{"CreatePurchaseOrder", 1917, 1043512, 41234, 402},
		{"CachedRead/pipelined", 25340, 78912, 4870, 33},
		{"CachedRead/direct", 30000, 66000, 4100, 28},
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.N != w.n || g.Metrics["ns/op"] != w.ns || g.Metrics["B/op"] != w.bytes || g.Metrics["allocs/op"] != w.allocs {
			t.Errorf("result %d = %+v; want %+v", i, g, w)
		}
	}
	if got[0].Metrics["orders/s"] != 958.3 {
		t.Errorf("custom metric orders/s = %v, want 958.3", got[0].Metrics["orders/s"])
	}

	row := allocsRow(got[0])
	if row.Value != "402 allocs/op, 40.3 KB/op" || row.Metrics["allocs_per_op"] != 402 || row.Metrics["bytes_per_op"] != 41234 ||
		row.Metrics["orders_per_s"] != 958.3 || !strings.Contains(row.Notes, "1.044ms per request") {
		t.Errorf("row = %+v", row)
	}
}
