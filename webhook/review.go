package webhook

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Versions of AdmissionReview the webhook answers, each in its own version.
const (
	admissionV1      = "admission.k8s.io/v1"
	admissionV1beta1 = "admission.k8s.io/v1beta1"
)

// review is the part of an AdmissionReview the webhook reads. The body is
// decoded once (parseReview): the object straight into the generic map the
// policy works on, as unstructured.Unstructured's decoder makes it
// (case-sensitive keys, integers kept as int64), so the patch is diffed
// against exactly what the apiserver sent. The request's oldObject,
// userInfo and options are checked as JSON, not kept.
type review struct {
	APIVersion string
	Kind       string
	Request    *reviewRequest
}

type reviewRequest struct {
	UID  string
	Kind struct {
		Group   string
		Version string
		Kind    string
	}
	SubResource string
	Name        string
	Namespace   string
	Operation   string
	DryRun      *bool
	Object      map[string]any
	// badObject names the JSON type of an object that is not an object.
	badObject string
}

// decodeReview parses and checks an AdmissionReview; the error says what is
// wrong in words a person can act on (HTTP 400).
func decodeReview(body []byte) (*review, error) {
	if len(body) == 0 {
		return nil, badRequest("empty request body: expected an AdmissionReview (admission.k8s.io/v1) JSON object")
	}
	r, err := parseReview(body)
	if err != nil {
		var ne *numberError
		if errors.As(err, &ne) {
			return nil, badRequest("request.object is not a valid Kubernetes object: %v", err)
		}
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
	if (req.Operation == opCreate || req.Operation == opUpdate) && req.Object == nil && req.badObject == "" {
		return nil, badRequest("AdmissionReview request %s (%s %s) has no object", req.UID, req.Operation, req.Kind.Kind)
	}
	return r, nil
}

// requestSkipped are the request's fields the webhook never reads: checked
// as JSON, not kept.
var requestSkipped = map[string]bool{"oldObject": true, "userInfo": true, "options": true}

// parseReview reads the review with jsonDecoder in one pass, the object
// straight into the generic map. Fields have the types encoding/json would
// demand of the review struct (null is the empty value).
func parseReview(body []byte) (*review, error) {
	// The body is the endpoint's own, never written again: the decoded
	// strings point into it.
	d := newJSONDecoderOwning(body)
	defer d.release()
	d.skipSpace()
	if d.pos >= len(body) || body[d.pos] != '{' {
		v, err := decodeJSONValue(body)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return &review{}, nil // null: as encoding/json, an empty review
		}
		return nil, fmt.Errorf("a JSON %s, not an object", jsonTypeName(v))
	}
	top := map[string]any{}
	// The top level and the request are walked by hand so that the
	// skipped fields are never built.
	d.depth++
	d.pos++
	err := d.members(func(key string) error {
		if key != "request" {
			v, err := d.value()
			top[key] = v
			return err
		}
		d.skipSpace()
		if d.pos < len(body) && body[d.pos] == '{' {
			v, err := d.object(requestSkipped)
			top[key] = v
			return err
		}
		v, err := d.value()
		top[key] = v
		return err
	})
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(body) {
		return nil, d.syntaxError("after top-level value")
	}
	r := &review{}
	var f fields
	r.APIVersion = f.str(top, "apiVersion")
	r.Kind = f.str(top, "kind")
	if reqMap, ok := f.obj(top, "request"); ok {
		req := &reviewRequest{}
		req.UID = f.str(reqMap, "uid")
		if k, ok := f.obj(reqMap, "kind"); ok {
			req.Kind.Group, req.Kind.Version, req.Kind.Kind = f.str(k, "group"), f.str(k, "version"), f.str(k, "kind")
		}
		req.SubResource = f.str(reqMap, "subResource")
		req.Name = f.str(reqMap, "name")
		req.Namespace = f.str(reqMap, "namespace")
		req.Operation = f.str(reqMap, "operation")
		if v, ok := reqMap["dryRun"]; ok && v != nil {
			b, isBool := v.(bool)
			if !isBool {
				f.wrong("dryRun", "a boolean", v)
			}
			req.DryRun = &b
		}
		// An object that is not a JSON object is the object's fault, not the
		// review's: it is reported for the kind once the kind is known.
		switch o := reqMap["object"].(type) {
		case map[string]any:
			req.Object = o
		case nil:
		default:
			req.badObject = jsonTypeName(o)
		}
		r.Request = req
	}
	if f.err != nil {
		return nil, f.err
	}
	return r, nil
}

// fields reads typed fields of decoded objects, keeping the first type error.
type fields struct{ err error }

func (f *fields) wrong(key, want string, got any) {
	if f.err == nil {
		f.err = fmt.Errorf("field %s: expected %s, got %T", key, want, got)
	}
}

func (f *fields) str(m map[string]any, key string) string {
	v, ok := m[key]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.wrong(key, "a string", v)
	}
	return s
}

func (f *fields) obj(m map[string]any, key string) (map[string]any, bool) {
	v, ok := m[key]
	if !ok || v == nil {
		return nil, false
	}
	o, ok := v.(map[string]any)
	if !ok {
		f.wrong(key, "an object", v)
	}
	return o, ok
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

// reviewSize is about the length of the answer appendReview encodes (more
// only when strings need escapes), so that it is written into one buffer.
func reviewSize(apiVersion, uid string, r *response) int {
	n := 128 + len(apiVersion) + len(uid) + base64.StdEncoding.EncodedLen(len(r.patch))
	for _, kv := range r.auditAnnotations {
		n += len(kv[0]) + len(kv[1]) + len(kv[1])/8 + 8 // quotes inside are escaped
	}
	for _, w := range r.warnings {
		n += len(w) + 4
	}
	return n
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

// jsonTypeName names the JSON type of a decoded value, for messages.
func jsonTypeName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "list"
	case string:
		return "string"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return "number"
}
