package server

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// newLimiter is one token bucket for the whole server; perSecond <= 0
// means no limit.
func newLimiter(perSecond float64, burst int) *rate.Limiter {
	if perSecond <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
}

// limit refuses requests over the admission rate before their body is
// read, with Retry-After in whole seconds.
func (s *Server) limit(h http.HandlerFunc) http.HandlerFunc {
	if s.limiter == nil {
		return h
	}
	refused := s.metrics.counter("admitd_admissions_rate_limited_total", "Admission requests refused by the rate limit.")
	return func(w http.ResponseWriter, r *http.Request) {
		res := s.limiter.Reserve()
		delay := res.Delay()
		if res.OK() && delay == 0 {
			h(w, r)
			return
		}
		res.Cancel()
		secs := max(1, int(math.Ceil(delay.Seconds())))
		refused.Inc()
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, fmt.Errorf("%w: more than %g admissions a second (burst %d); retry after %ds",
			ErrRateLimited, float64(s.limiter.Limit()), s.limiter.Burst(), secs))
	}
}

// counter registers a counter once per registry and returns it, so a
// wrapper built twice counts into the same series.
func (m *metrics) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	err := m.reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		return dup.ExistingCollector.(prometheus.Counter)
	}
	return c
}
