package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// maxPortEntries caps the entries of one port-list annotation the engine
// reads (a range counts once: it is never expanded). Longer values are left
// as they are, with a Skip or a lint finding; no port list Linkerd users
// write comes near it, and it bounds the work an object can ask for.
const maxPortEntries = 1000

// portSet is a parsed port-list annotation such as
// config.linkerd.io/opaque-ports: "25,587, 4000-4100, mysql". Entries keep
// their original spelling so a merge only ever appends.
type portSet struct {
	entries []string
	ranges  [][2]int
	names   []string // named ports, resolved by the caller
}

// parsePortSet parses a Linkerd port list of at most max entries. An
// error means an entry is neither a port, a range nor a port name, or the
// list is too long: the value must then be left alone.
func parsePortSet(value string, max int) (portSet, error) {
	var s portSet
	for len(value) > 0 {
		raw, rest, _ := strings.Cut(value, ",")
		value = rest
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		if len(s.entries) == max {
			if max == maxPortEntries {
				return portSet{}, errTooManyEntries
			}
			return portSet{}, fmt.Errorf("more than %d entries", max)
		}
		if lo, hi, isRange := strings.Cut(e, "-"); isRange {
			a, errA := strconv.Atoi(strings.TrimSpace(lo))
			b, errB := strconv.Atoi(strings.TrimSpace(hi))
			if errA == nil && errB == nil {
				if a < 0 || b > 65535 || a > b {
					return portSet{}, fmt.Errorf("%q is not a range of ports within 0-65535", e)
				}
				s.entries = append(s.entries, e)
				s.ranges = append(s.ranges, [2]int{a, b})
				continue
			}
		}
		if n, err := strconv.Atoi(e); err == nil {
			if n < 0 || n > 65535 {
				return portSet{}, fmt.Errorf("port %d is out of range 0-65535", n)
			}
			s.entries = append(s.entries, e)
			s.ranges = append(s.ranges, [2]int{n, n})
			continue
		}
		if !isPortName(e) {
			return portSet{}, fmt.Errorf("%q is neither a port, a range such as 4000-4100, nor a port name", truncate(e, 40))
		}
		s.entries = append(s.entries, e)
		s.names = append(s.names, e)
	}
	return s, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// isPortName reports whether s is an IANA-style port name (what
// Kubernetes allows for containerPort names).
func isPortName(s string) bool {
	if len(s) == 0 || len(s) > 15 {
		return false
	}
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			letter = true
		case c >= '0' && c <= '9', c == '-':
		default:
			return false
		}
	}
	return letter && s[0] != '-' && s[len(s)-1] != '-'
}

// coverage is a portSet resolved for lookups: sorted, merged intervals
// of its ranges and of the ports its names resolve to. Building it is
// n log n in the set's size; each lookup is log n.
type coverage [][2]int

func (s portSet) coverage(resolve func(name string) int) coverage {
	iv := make([][2]int, 0, len(s.ranges)+len(s.names))
	iv = append(iv, s.ranges...)
	if resolve != nil {
		for _, n := range s.names {
			if p := resolve(n); p > 0 {
				iv = append(iv, [2]int{p, p})
			}
		}
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i][0] < iv[j][0] })
	out := iv[:0]
	for _, r := range iv {
		if len(out) > 0 && r[0] <= out[len(out)-1][1]+1 {
			if r[1] > out[len(out)-1][1] {
				out[len(out)-1][1] = r[1]
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// covers reports whether port is in the set.
func (c coverage) covers(port int) bool {
	i := sort.Search(len(c), func(i int) bool { return c[i][1] >= port })
	return i < len(c) && c[i][0] <= port
}

// errTooManyEntries is a port list longer than maxPortEntries.
var errTooManyEntries = fmt.Errorf("more than %d entries", maxPortEntries)

// mergePorts returns the annotation value with the missing ports appended
// and whether anything was missing. An error means the existing value
// cannot be parsed (then nothing may be written); it says why.
func mergePorts(existing string, want []int, resolve func(string) int) (value string, changed bool, err error) {
	set, err := parsePortSet(existing, maxPortEntries)
	if err != nil {
		return existing, false, err
	}
	cov := set.coverage(resolve)
	var missing []int
	seen := make(map[int]bool, len(want))
	for _, p := range want {
		if !seen[p] && !cov.covers(p) {
			missing = append(missing, p)
		}
		seen[p] = true
	}
	if len(missing) == 0 {
		return existing, false, nil
	}
	var b strings.Builder
	for _, e := range set.entries {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e)
	}
	for _, p := range missing {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(p))
	}
	return b.String(), true, nil
}

// intSet collects distinct ints in first-seen order, in O(1) per add.
type intSet struct {
	list []int
	seen map[int]struct{}
}

func (s *intSet) add(n int) {
	if s.seen == nil {
		s.seen = make(map[int]struct{}, 4)
	}
	if _, ok := s.seen[n]; ok {
		return
	}
	s.seen[n] = struct{}{}
	s.list = append(s.list, n)
}

func (s *intSet) has(n int) bool { _, ok := s.seen[n]; return ok }

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
