package webhook

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Versions of AdmissionReview the webhook answers, each in its own version.
const (
	admissionV1      = "admission.k8s.io/v1"
	admissionV1beta1 = "admission.k8s.io/v1beta1"
)

// review is the part of an AdmissionReview the webhook reads. The body is
// decoded once: the object straight into the generic map the policy works
// on, with the decoder unstructured.Unstructured uses (case-sensitive keys,
// integers kept as int64), so the patch is diffed against exactly what the
// apiserver sent. Fields not listed here (oldObject, userInfo, options) are
// skipped, not decoded.
type review struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Request    *reviewRequest `json:"request"`
}

type reviewRequest struct {
	UID  string `json:"uid"`
	Kind struct {
		Group   string `json:"group"`
		Version string `json:"version"`
		Kind    string `json:"kind"`
	} `json:"kind"`
	SubResource string         `json:"subResource"`
	Name        string         `json:"name"`
	Namespace   string         `json:"namespace"`
	Operation   string         `json:"operation"`
	DryRun      *bool          `json:"dryRun"`
	Object      map[string]any `json:"object"`
}

// decodeReview parses and checks an AdmissionReview; the error says what is
// wrong in words a person can act on (HTTP 400).
func decodeReview(body []byte) (*review, error) {
	if len(body) == 0 {
		return nil, badRequest("empty request body: expected an AdmissionReview (admission.k8s.io/v1) JSON object")
	}
	var r review
	if err := utiljson.Unmarshal(body, &r); err != nil {
		return nil, badRequest("request body is not an AdmissionReview JSON object: %v", err)
	}
	if r.Kind != "AdmissionReview" || (r.APIVersion != admissionV1 && r.APIVersion != admissionV1beta1) {
		return nil, badRequest("request body has apiVersion %q and kind %q: expected apiVersion admission.k8s.io/v1, kind AdmissionReview", r.APIVersion, r.Kind)
	}
	req := r.Request
	switch {
	case req == nil:
		return nil, badRequest("AdmissionReview has no request")
	case req.UID == "":
		return nil, badRequest("AdmissionReview request has no uid")
	case req.Kind.Kind == "":
		return nil, badRequest("AdmissionReview request %s has no kind", req.UID)
	}
	if (req.Operation == opCreate || req.Operation == opUpdate) && req.Object == nil {
		return nil, badRequest("AdmissionReview request %s (%s %s) has no object", req.UID, req.Operation, req.Kind.Kind)
	}
	return &r, nil
}

// Operations the webhook acts on.
const (
	opCreate = "CREATE"
	opUpdate = "UPDATE"
)

// response is the AdmissionResponse: always allowed (the webhook never
// denies), with an optional JSON patch, audit annotations and warnings.
type response struct {
	patch            []byte
	auditAnnotations [][2]string
	warnings         []string
}

// appendReview encodes the answering AdmissionReview by hand: the shape is
// fixed and small, and reflection-based encoding of admissionv1 types cost
// more than the policy itself.
func appendReview(b []byte, apiVersion, uid string, r *response) []byte {
	b = append(b, `{"apiVersion":`...)
	b = appendString(b, apiVersion)
	b = append(b, `,"kind":"AdmissionReview","response":{"uid":`...)
	b = appendString(b, uid)
	b = append(b, `,"allowed":true`...)
	if len(r.patch) > 0 {
		b = append(b, `,"patchType":"JSONPatch","patch":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.patch)
		b = append(b, '"')
	}
	if len(r.auditAnnotations) > 0 {
		b = append(b, `,"auditAnnotations":{`...)
		for i, kv := range r.auditAnnotations {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, kv[0])
			b = append(b, ':')
			b = appendString(b, kv[1])
		}
		b = append(b, '}')
	}
	if len(r.warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, w := range r.warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, w)
		}
		b = append(b, ']')
	}
	return append(b, "}}"...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quotes, backslashes and control
// characters escaped, invalid UTF-8 replaced by U+FFFD (as encoding/json).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendValue appends a value of the generic object model (what the JSON
// decoder makes and the rules write) as JSON; map keys are sorted, as
// encoding/json sorts them.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, v[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	}
	// Anything else (floats, typed values a rule might write) takes the
	// general path, so it is encoded exactly as encoding/json does.
	j, err := json.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("encode patch value %T: %w", v, err)
	}
	return append(b, j...), nil
}
