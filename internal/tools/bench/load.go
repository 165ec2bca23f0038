package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// newClient is the one HTTP client every contender is driven with: keep-
// alive connections, enough idle ones for the highest concurrency.
func newClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			DisableCompression:  true,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// target is one request to repeat: the same body every time, and a check
// of the answer so a contender that fails fast does not look fast.
type target struct {
	name  string
	url   string
	body  []byte
	check func(status int, body []byte) error
}

// trial is one measurement: request latencies and the throughput reached.
type trial struct {
	lat  []time.Duration
	rate float64 // requests per second
	// evalMS are server-side eval_ms values, when the target reports them.
	evalMS []float64
}

func (t trial) p(q float64) time.Duration { return quantile(t.lat, q) }

// closedLoop runs conc workers, each sending the next request as soon as
// the previous one is answered, for d; the first warm of each worker's
// requests are not recorded.
func closedLoop(c *http.Client, tg target, conc int, d time.Duration, evalField bool) (trial, error) {
	var (
		mu    sync.Mutex
		all   []time.Duration
		evals []float64
		first error
		wg    sync.WaitGroup
	)
	warmUntil := time.Now().Add(d / 10)
	end := warmUntil.Add(d)
	for range conc {
		wg.Go(func() {
			var lat []time.Duration
			var ev []float64
			var buf bytes.Buffer
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				status, err := post(c, tg.url, tg.body, &buf)
				el := time.Since(t0)
				if err == nil {
					err = tg.check(status, buf.Bytes())
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("%s: %w", tg.name, err)
					}
					mu.Unlock()
					return
				}
				if t0.Before(warmUntil) {
					continue
				}
				lat = append(lat, el)
				if evalField {
					if v, ok := evalMS(buf.Bytes()); ok {
						ev = append(ev, v)
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			evals = append(evals, ev...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if first != nil {
		return trial{}, first
	}
	// Every recorded request started inside the measured window of length
	// d; the last one of each worker may end a little after it.
	return trial{lat: all, rate: float64(len(all)) / d.Seconds(), evalMS: evals}, nil
}

func post(c *http.Client, url string, body []byte, out *bytes.Buffer) (int, error) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	out.Reset()
	if _, err := io.Copy(out, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// evalMS reads the decision's server-side eval_ms.
func evalMS(body []byte) (float64, bool) {
	var d struct {
		EvalMS *float64 `json:"eval_ms"`
	}
	if json.Unmarshal(body, &d) != nil || d.EvalMS == nil {
		return 0, false
	}
	return *d.EvalMS, true
}

// sequential takes one sample after another, for d, and returns their
// latencies; f does one sample.
func sequential(d time.Duration, maxN int, f func() error) ([]time.Duration, error) {
	var lat []time.Duration
	end := time.Now().Add(d)
	for time.Now().Before(end) && len(lat) < maxN {
		t0 := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, nil
}

// probeFloor is the least a script must do to learn the facts admitd
// collects: one TCP handshake to the candidate's raft address, then one
// GET of its /v1/state over a fresh connection, by a bare client.
func probeFloor(raftAddr, apiURL string) func() error {
	fresh := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	return func() error {
		conn, err := net.DialTimeout("tcp", raftAddr, 5*time.Second)
		if err != nil {
			return err
		}
		conn.Close()
		resp, err := fresh.Get(apiURL + "/v1/state")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var st struct {
			NodeID      *string `json:"node_id"`
			Initialized *bool   `json:"initialized"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || st.NodeID == nil || st.Initialized == nil {
			return fmt.Errorf("state: status %d", resp.StatusCode)
		}
		return nil
	}
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func quantileF(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func median(xs []float64) float64 { return quantileF(xs, 0.5) }
