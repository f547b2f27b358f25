// loadgen is the one load client of `make bench`: keep-alive HTTP/1.1 against a unix socket
// or a TCP address, so the direct socket and the proxy are measured by the same client.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Requests   int64   `json:"requests"`
	Sent       int64   `json:"sent"` // warm-up included: for CPU time per request
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps"`
	Bytes      int64   `json:"bytes"`
	MBPerSec   float64 `json:"mb_per_s"`
	P50Micros  float64 `json:"p50_us"`
	P99Micros  float64 `json:"p99_us"`
	StatusSeen []int   `json:"status_seen"`
}

func main() {
	unixPath := flag.String("unix", "", "unix socket path (direct daemon)")
	tcpAddr := flag.String("tcp", "", "host:port (proxy)")
	path := flag.String("path", "/_ping", "request path")
	conc := flag.Int("c", 1, "concurrent keep-alive connections")
	dur := flag.Duration("d", 5*time.Second, "duration")
	warm := flag.Duration("warmup", 500*time.Millisecond, "warm-up before measuring")
	n := flag.Int("n", 0, "stop after this many requests per connection (0: use -d)")
	flag.Parse()

	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		if *unixPath != "" {
			return d.DialContext(ctx, "unix", *unixPath)
		}
		return d.DialContext(ctx, "tcp", *tcpAddr)
	}
	tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc,
		DisableCompression: true}
	client := &http.Client{Transport: tr}
	url := "http://docker" + *path

	var total, sent, errs, bytes int64
	statuses := sync.Map{}
	var mu sync.Mutex
	var lat []time.Duration
	measuring := atomic.Bool{}
	deadline := time.Now().Add(*warm + *dur)
	time.AfterFunc(*warm, func() { measuring.Store(true) })
	var start time.Time
	startOnce := sync.Once{}
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			buf := make([]byte, 256<<10)
			for k := 0; ; k++ {
				if *n > 0 && k >= *n {
					break
				}
				if *n == 0 && time.Now().After(deadline) {
					break
				}
				t0 := time.Now()
				resp, err := client.Get(url)
				atomic.AddInt64(&sent, 1)
				if err != nil {
					atomic.AddInt64(&errs, 1)
					continue
				}
				var got int64
				for {
					m, rerr := resp.Body.Read(buf)
					got += int64(m)
					if rerr == io.EOF {
						break
					}
					if rerr != nil {
						atomic.AddInt64(&errs, 1)
						break
					}
				}
				resp.Body.Close()
				statuses.Store(resp.StatusCode, true)
				if measuring.Load() || *n > 0 {
					startOnce.Do(func() { start = t0 })
					atomic.AddInt64(&total, 1)
					atomic.AddInt64(&bytes, got)
					local = append(local, time.Since(t0))
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds())
	}
	r := result{Requests: total, Sent: sent, Errors: errs, Seconds: elapsed, Bytes: bytes,
		P50Micros: pct(0.50), P99Micros: pct(0.99)}
	if elapsed > 0 {
		r.RPS = float64(total) / elapsed
		r.MBPerSec = float64(bytes) / elapsed / 1e6
	}
	statuses.Range(func(k, _ any) bool { r.StatusSeen = append(r.StatusSeen, k.(int)); return true })
	sort.Ints(r.StatusSeen)
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
