package policy

import (
	"strconv"
	"strings"
)

// portSet is a parsed port-list annotation such as
// config.linkerd.io/opaque-ports: "25,587, 4000-4100, mysql". Entries keep
// their original spelling so a merge only ever appends.
type portSet struct {
	entries []string
	ranges  [][2]int
	names   []string // named ports, resolved by the caller
}

// parsePortSet parses a Linkerd port list; ok is false when an entry is
// neither a port, a range nor a port name, and then the value must be left
// alone.
func parsePortSet(value string) (portSet, bool) {
	var s portSet
	for _, raw := range strings.Split(value, ",") {
		e := strings.TrimSpace(raw)
		if e == "" {
			continue
		}
		if lo, hi, isRange := strings.Cut(e, "-"); isRange {
			a, errA := strconv.Atoi(strings.TrimSpace(lo))
			b, errB := strconv.Atoi(strings.TrimSpace(hi))
			if errA == nil && errB == nil {
				if a < 0 || b > 65535 || a > b {
					return portSet{}, false
				}
				s.entries = append(s.entries, e)
				s.ranges = append(s.ranges, [2]int{a, b})
				continue
			}
		}
		if n, err := strconv.Atoi(e); err == nil {
			if n < 0 || n > 65535 {
				return portSet{}, false
			}
			s.entries = append(s.entries, e)
			s.ranges = append(s.ranges, [2]int{n, n})
			continue
		}
		if !isPortName(e) {
			return portSet{}, false
		}
		s.entries = append(s.entries, e)
		s.names = append(s.names, e)
	}
	return s, true
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

// covers reports whether port is in the set, directly, by a range, or by a
// name that resolve maps to it.
func (s portSet) covers(port int, resolve func(name string) int) bool {
	for _, r := range s.ranges {
		if port >= r[0] && port <= r[1] {
			return true
		}
	}
	if resolve != nil {
		for _, n := range s.names {
			if resolve(n) == port {
				return true
			}
		}
	}
	return false
}

// mergePorts returns the annotation value with the missing ports appended
// and whether anything was missing; ok is false when the existing value
// cannot be parsed (then nothing may be written).
func mergePorts(existing string, want []int, resolve func(string) int) (value string, changed, ok bool) {
	set, ok := parsePortSet(existing)
	if !ok {
		return existing, false, false
	}
	var missing []int
	for _, p := range want {
		if !set.covers(p, resolve) && !containsInt(missing, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return existing, false, true
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
	return b.String(), true, true
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
