package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// jsonDecoder parses JSON into the generic object model the policy works on,
// giving exactly what k8s.io/apimachinery/pkg/util/json.Unmarshal into an
// interface{} gives (the decoder of unstructured.Unstructured): objects as
// map[string]any (the last of duplicate keys wins), arrays as non-nil []any,
// integers that fit as int64, other numbers as float64, invalid UTF-8 as
// U+FFFD. A fuzz test holds the two equal. It exists because the reflection
// of encoding/json cost half of a request: this one reads the bytes once and
// allocates only the values. Strings without escapes (nearly all of them,
// keys included) are slices of src, the input as one string (the request
// body itself for the endpoint, newJSONDecoderOwning; a copy otherwise), so
// they cost no allocation each; the decoded values keep src alive as long
// as any of them is referenced, which is the request.
type jsonDecoder struct {
	data  []byte
	src   string // data as a string
	pos   int
	depth int
	// elems and kvs hold the values of the arrays and objects being
	// parsed, innermost last, so that each is allocated once at its final
	// size instead of growing.
	elems   []any
	kvs     []member
	scratch struct {
		elems [32]any
		kvs   [32]member
	}
}

type member struct {
	key   string
	value any
}

func newJSONDecoder(data []byte) *jsonDecoder {
	return newJSONDecoderSrc(data, string(data))
}

// newJSONDecoderOwning decodes data without copying it: the decoded strings
// point into data itself, which the caller hands over and must never write
// to again (the endpoint's request body, read into a buffer of its own).
func newJSONDecoderOwning(data []byte) *jsonDecoder {
	if len(data) == 0 {
		return newJSONDecoderSrc(data, "")
	}
	return newJSONDecoderSrc(data, unsafe.String(&data[0], len(data)))
}

// decoders keep the scratch stacks of finished decodings for the next.
var decoders = sync.Pool{New: func() any {
	d := &jsonDecoder{}
	d.elems, d.kvs = d.scratch.elems[:0], d.scratch.kvs[:0]
	return d
}}

func newJSONDecoderSrc(data []byte, src string) *jsonDecoder {
	d := decoders.Get().(*jsonDecoder)
	d.data, d.src, d.pos, d.depth = data, src, 0, 0
	return d
}

// release returns d for reuse; d must not be used after. Stacks grown
// past maxPooledScratch entries (a list of 100,000 env entries) are dropped
// rather than kept.
func (d *jsonDecoder) release() {
	clear(d.elems) // what an error left; the rest was cleared when popped
	clear(d.kvs)
	d.data, d.src = nil, ""
	d.elems, d.kvs = d.elems[:0], d.kvs[:0]
	if cap(d.elems) > maxPooledScratch {
		d.elems = d.scratch.elems[:0]
	}
	if cap(d.kvs) > maxPooledScratch {
		d.kvs = d.scratch.kvs[:0]
	}
	decoders.Put(d)
}

const maxPooledScratch = 1024

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

var errJSONDepth = errors.New("exceeded max depth")

func (d *jsonDecoder) syntaxError(what string) error {
	if d.pos >= len(d.data) {
		return errors.New("unexpected end of JSON input")
	}
	return fmt.Errorf("invalid character %q %s (offset %d)", d.data[d.pos], what, d.pos)
}

func (d *jsonDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// decodeJSONValue parses data, one JSON value with optional white space
// around it.
func decodeJSONValue(data []byte) (any, error) {
	d := newJSONDecoder(data)
	defer d.release()
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return nil, d.syntaxError("after top-level value")
	}
	return v, nil
}

// value parses one value after optional white space.
func (d *jsonDecoder) value() (any, error) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, d.syntaxError("")
	}
	switch c := d.data[d.pos]; {
	case c == '{':
		return d.object(nil)
	case c == '[':
		return d.array()
	case c == '"':
		return d.str()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, d.syntaxError("looking for beginning of value")
}

func (d *jsonDecoder) literal(word string) error {
	if !bytes.HasPrefix(d.data[d.pos:], []byte(word)) {
		for i := 0; i < len(word) && d.pos < len(d.data) && d.data[d.pos] == word[i]; i++ {
			d.pos++
		}
		return d.syntaxError("in literal " + word)
	}
	d.pos += len(word)
	return nil
}

// object parses an object; keys in skip have their values checked but not
// kept (fields the webhook never reads, such as request.oldObject).
func (d *jsonDecoder) object(skip map[string]bool) (map[string]any, error) {
	d.depth++
	if d.depth > maxJSONDepth {
		return nil, errJSONDepth
	}
	d.pos++ // '{'
	// On an error the stacks are left as they are: release clears them.
	mark := len(d.kvs)
	err := d.members(func(key string) error {
		if skip[key] {
			return d.skipValue()
		}
		v, err := d.value()
		if err != nil {
			return err
		}
		d.kvs = append(d.kvs, member{key, v})
		return nil
	})
	if err != nil {
		return nil, err
	}
	ms := d.kvs[mark:]
	m := make(map[string]any, len(ms))
	for i := range ms {
		m[ms[i].key] = ms[i].value // the last of duplicate keys wins
		ms[i] = member{}
	}
	d.kvs = d.kvs[:mark]
	return m, nil
}

// members parses the members of an object whose '{' is consumed, calling
// member with d at each value.
func (d *jsonDecoder) members(member func(key string) error) error {
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return nil
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return d.syntaxError("looking for beginning of object key string")
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return d.syntaxError("after object key")
		}
		d.pos++
		if err := member(key); err != nil {
			return err
		}
		d.skipSpace()
		if d.pos >= len(d.data) {
			return d.syntaxError("")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return nil
		default:
			return d.syntaxError("after object key:value pair")
		}
	}
}

// skipValue checks one value and throws it away. Rare (fields the webhook
// does not read), so it simply decodes.
func (d *jsonDecoder) skipValue() error {
	_, err := d.value()
	return err
}

func (d *jsonDecoder) array() ([]any, error) {
	d.depth++
	if d.depth > maxJSONDepth {
		return nil, errJSONDepth
	}
	d.pos++ // '['
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return make([]any, 0), nil
	}
	mark := len(d.elems)
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		d.elems = append(d.elems, v)
		d.skipSpace()
		if d.pos >= len(d.data) {
			return nil, d.syntaxError("")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			es := d.elems[mark:]
			a := make([]any, len(es))
			copy(a, es)
			clear(es)
			d.elems = d.elems[:mark]
			return a, nil
		default:
			return nil, d.syntaxError("after array element")
		}
	}
}

// numberError is a number no Go number holds (1e400): valid JSON, but
// not a value of any Kubernetes object.
type numberError struct{ number string }

func (e *numberError) Error() string {
	return "cannot unmarshal number " + e.number + " into a float64"
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number parses a number by JSON's grammar and converts it as
// sigs.k8s.io/json does with integers preserved.
func (d *jsonDecoder) number() (any, error) {
	start := d.pos
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case d.pos < len(d.data) && d.data[d.pos] >= '1' && d.data[d.pos] <= '9':
		for d.pos < len(d.data) && isDigit(d.data[d.pos]) {
			d.pos++
		}
	default:
		return nil, d.syntaxError("in numeric literal")
	}
	fraction := false
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		fraction = true
		d.pos++
		if d.pos >= len(d.data) || !isDigit(d.data[d.pos]) {
			return nil, d.syntaxError("after decimal point in numeric literal")
		}
		for d.pos < len(d.data) && isDigit(d.data[d.pos]) {
			d.pos++
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if d.pos >= len(d.data) || !isDigit(d.data[d.pos]) {
			return nil, d.syntaxError("in exponent of numeric literal")
		}
		for d.pos < len(d.data) && isDigit(d.data[d.pos]) {
			d.pos++
		}
	}
	s := d.src[start:d.pos]
	if !fraction {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, &numberError{strings.Clone(s)}
	}
	return f, nil
}

// str parses a string at d.pos (its opening quote).
func (d *jsonDecoder) str() (string, error) {
	d.pos++ // '"'
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			s := d.src[start:d.pos]
			d.pos++
			return s, nil
		case c == '\\' || c >= utf8.RuneSelf:
			return d.strSlow(start)
		case c < 0x20:
			return "", d.syntaxError("in string literal")
		}
		d.pos++
	}
	return "", d.syntaxError("")
}

// strSlow finishes a string with escapes or non-ASCII bytes, from start.
func (d *jsonDecoder) strSlow(start int) (string, error) {
	b := make([]byte, 0, d.pos-start+16)
	b = append(b, d.data[start:d.pos]...)
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(b), nil
		case c < 0x20:
			return "", d.syntaxError("in string literal")
		case c == '\\':
			d.pos++
			if d.pos >= len(d.data) {
				return "", d.syntaxError("")
			}
			switch e := d.data[d.pos]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, ok := d.hex4(d.pos + 1)
				if !ok {
					return "", d.syntaxError("in \\u hexadecimal character escape")
				}
				d.pos += 4
				if utf16.IsSurrogate(r) {
					// A valid pair is two escapes; anything else is U+FFFD.
					if d.pos+2 < len(d.data) && d.data[d.pos+1] == '\\' && d.data[d.pos+2] == 'u' {
						if r2, ok := d.hex4(d.pos + 3); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								d.pos += 6
								b = utf8.AppendRune(b, dec)
								break
							}
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", d.syntaxError("in string escape code")
			}
			d.pos++
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.pos++
		default:
			r, size := utf8.DecodeRune(d.data[d.pos:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, d.data[d.pos:d.pos+size]...)
			}
			d.pos += size
		}
	}
	return "", d.syntaxError("")
}

// hex4 reads four hex digits at i.
func (d *jsonDecoder) hex4(i int) (rune, bool) {
	if i+4 > len(d.data) {
		return 0, false
	}
	var r rune
	for _, c := range d.data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}
