package policy

import "strings"

// globMatch reports whether s matches pattern, where '*' matches any run of
// characters (including '/') and '?' exactly one.
func globMatch(pattern, s string) bool {
	// Iterative matcher with single-star backtracking: linear enough for
	// the short names and images it sees, and allocation-free.
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// ImageRepository strips the tag and digest of an image reference:
// "registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.5.2@sha256:…"
// becomes "registry.k8s.io/ingress-nginx/kube-webhook-certgen".
func ImageRepository(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	slash := strings.LastIndexByte(image, '/')
	if i := strings.LastIndexByte(image, ':'); i > slash {
		image = image[:i]
	}
	return image
}

// MatchImage matches an image reference against a pattern. Tag and digest
// are ignored. A pattern with a '/' is a glob over the whole repository
// ("registry.k8s.io/ingress-nginx/*"); a pattern without one is a glob over
// the repository's last path element, so "traefik" matches both
// "traefik:v3.3" and "docker.io/traefik:v3.3" but not "my-traefik".
func MatchImage(pattern, image string) bool {
	repo := ImageRepository(image)
	if strings.IndexByte(pattern, '/') >= 0 {
		return globMatch(pattern, repo)
	}
	if i := strings.LastIndexByte(repo, '/'); i >= 0 {
		repo = repo[i+1:]
	}
	return globMatch(pattern, repo)
}

// selectorMatches evaluates a LabelSelector; nil matches everything.
func selectorMatches(s *LabelSelector, labels map[string]any) bool {
	if s == nil {
		return true
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k].(string); !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		got, has := labels[e.Key].(string)
		in := false
		for _, v := range e.Values {
			if has && v == got {
				in = true
				break
			}
		}
		switch e.Operator {
		case "In":
			if !in {
				return false
			}
		case "NotIn":
			if in {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}
