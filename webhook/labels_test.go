package webhook

import (
	"testing"
	"unsafe"
)

// The decoder's strings point into the request body; a metric series keeps
// its label values for the life of the process, so a label value must never
// be one of them.
func TestLabelValuesNeverPointIntoTheRequest(t *testing.T) {
	body := []byte(`{"kind":"Deployment","operation":"CREATE","other":"WidgetSet"}`)
	d := newJSONDecoderOwning(body)
	v, err := d.value()
	d.release()
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	inBody := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		start := uintptr(unsafe.Pointer(&body[0]))
		return p >= start && p < start+uintptr(len(body))
	}
	for _, key := range []string{"kind", "operation", "other"} {
		s := m[key].(string)
		if !inBody(s) {
			t.Fatalf("decoded %s %q is not a slice of the body: the test no longer tests anything", key, s)
		}
		l := labelValue(s)
		if l != s {
			t.Errorf("labelValue(%q) = %q", s, l)
		}
		if inBody(l) {
			t.Errorf("labelValue(%q) points into the request body", s)
		}
	}
}
