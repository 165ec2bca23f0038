package admission

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// jsonValue parses one JSON document straight into the ast.Value OPA
// evaluates, in one pass: the same value util.UnmarshalJSON followed by
// ast.InterfaceToValue gives (numbers keep their literal text, a repeated
// object key keeps its last value, strings are unescaped as encoding/json
// does), without building the intermediate map[string]any tree.
func jsonValue(raw []byte) (ast.Value, error) {
	p := jsonParser{b: raw}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, fmt.Errorf("unexpected data at byte %d after the JSON document", p.i)
	}
	return v, nil
}

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

type jsonParser struct {
	b []byte
	i int
}

var errJSONEnd = errors.New("unexpected end of JSON input")

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (ast.Value, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("JSON nested too deeply")
	}
	p.space()
	if p.i >= len(p.b) {
		return nil, errJSONEnd
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return ast.InterfaceToValue(s)
	case c == 't':
		return p.literal("true", ast.Boolean(true))
	case c == 'f':
		return p.literal("false", ast.Boolean(false))
	case c == 'n':
		return p.literal("null", ast.NullValue)
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, fmt.Errorf("invalid character %q at byte %d", c, p.i)
	}
}

func (p *jsonParser) literal(word string, v ast.Value) (ast.Value, error) {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return nil, fmt.Errorf("invalid literal at byte %d", p.i)
	}
	p.i += len(word)
	if b, ok := v.(ast.Boolean); ok {
		return ast.InterfaceToValue(bool(b))
	}
	return v, nil
}

func (p *jsonParser) number() (ast.Value, error) {
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	lit := string(p.b[start:p.i])
	if !validNumber(lit) {
		return nil, fmt.Errorf("invalid number %q at byte %d", lit, start)
	}
	return ast.InterfaceToValue(json.Number(lit))
}

// validNumber checks the JSON number grammar.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

// str reads a JSON string. The common case, no escapes and valid UTF-8, is
// a plain copy; anything else is left to encoding/json so escapes and
// invalid bytes come out exactly as it decodes them.
func (p *jsonParser) str() (string, error) {
	start := p.i
	p.i++ // opening quote
	plain := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			body := p.b[start+1 : p.i-1]
			if plain && utf8.Valid(body) {
				return string(body), nil
			}
			var s string
			if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
				return "", fmt.Errorf("string at byte %d: %v", start, err)
			}
			return s, nil
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return "", fmt.Errorf("control character in string at byte %d", p.i)
		default:
			p.i++
		}
	}
	return "", errJSONEnd
}

func (p *jsonParser) array(depth int) (ast.Value, error) {
	p.i++ // [
	var vals []ast.Value
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return ast.NewArray(), nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
		p.space()
		if p.i >= len(p.b) {
			return nil, errJSONEnd
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			// One block of terms for all elements, as InterfaceToValue does.
			slab := make([]ast.Term, len(vals))
			terms := make([]*ast.Term, len(vals))
			for i, v := range vals {
				slab[i].Value = v
				terms[i] = &slab[i]
			}
			return ast.NewArray(terms...), nil
		default:
			return nil, fmt.Errorf("invalid character %q in array at byte %d", p.b[p.i], p.i)
		}
	}
}

func (p *jsonParser) object(depth int) (ast.Value, error) {
	p.i++ // {
	var keys []string
	var vals []ast.Value
	var seen map[string]int // key -> index, once the object is large
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return ast.NewObject(), nil
	}
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, fmt.Errorf("object key expected at byte %d", p.i)
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, fmt.Errorf("colon expected at byte %d", p.i)
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		// The last of repeated keys wins, as in encoding/json.
		if at, dup := keyIndex(keys, &seen, k); dup {
			vals[at] = v
		} else {
			keys = append(keys, k)
			vals = append(vals, v)
		}
		p.space()
		if p.i >= len(p.b) {
			return nil, errJSONEnd
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			slab := make([]ast.Term, 2*len(keys))
			kvs := make([][2]*ast.Term, len(keys))
			for i, k := range keys {
				kv, err := ast.InterfaceToValue(k)
				if err != nil {
					return nil, err
				}
				slab[2*i].Value, slab[2*i+1].Value = kv, vals[i]
				kvs[i] = [2]*ast.Term{&slab[2*i], &slab[2*i+1]}
			}
			return ast.NewObject(kvs...), nil
		default:
			return nil, fmt.Errorf("invalid character %q in object at byte %d", p.b[p.i], p.i)
		}
	}
}

// keyIndex finds k among the keys read so far: a scan while the object is
// small, an index built on the way once it is not. A key not found is
// recorded as the next one.
func keyIndex(keys []string, seen *map[string]int, k string) (int, bool) {
	const scanUpTo = 16
	if *seen == nil && len(keys) < scanUpTo {
		for i := range keys {
			if keys[i] == k {
				return i, true
			}
		}
		return 0, false
	}
	if *seen == nil {
		*seen = make(map[string]int, 2*len(keys))
		for i, key := range keys {
			(*seen)[key] = i
		}
	}
	if i, ok := (*seen)[k]; ok {
		return i, true
	}
	(*seen)[k] = len(keys)
	return 0, false
}
