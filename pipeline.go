package imgd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Pipeline is an ordered list of steps producing one output image.
type Pipeline []Step

// ParsePipeline reads a pipeline from its JSON form, an array of
// {"op": …, …} objects, fills defaults and validates every parameter.
// Errors are *Error with code invalid_argument and a field such as
// "steps[1].quality".
func ParsePipeline(data []byte) (Pipeline, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Field: "pipeline",
			Message: "must be a JSON array of steps such as [{\"op\":\"resize\",\"width\":300}]", Err: err}
	}
	if len(raws) == 0 {
		return nil, &Error{Code: CodeInvalidArgument, Field: "pipeline", Message: "needs at least one step"}
	}
	if len(raws) > MaxSteps {
		return nil, &Error{Code: CodeInvalidArgument, Field: "pipeline",
			Message: fmt.Sprintf("has %d steps, at most %d are allowed", len(raws), MaxSteps)}
	}
	p := make(Pipeline, 0, len(raws))
	for i, raw := range raws {
		s, err := parseStep(raw)
		if err != nil {
			return nil, prefixField(err, fmt.Sprintf("steps[%d]", i))
		}
		p = append(p, s)
	}
	if err := p.validateOrder(); err != nil {
		return nil, err
	}
	return p, nil
}

// MustParsePipeline is ParsePipeline for literals in tests and tables; it
// panics on error.
func MustParsePipeline(s string) Pipeline {
	p, err := ParsePipeline([]byte(s))
	if err != nil {
		panic(err)
	}
	return p
}

func parseStep(raw json.RawMessage) (Step, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, fieldErr("", "must be an object with an \"op\" key")
	}
	var op string
	if err := json.Unmarshal(fields["op"], &op); err != nil || op == "" {
		return nil, fieldErr("op", "is required and must be a string")
	}
	newStep, ok := stepTypes[op]
	if !ok {
		return nil, fieldErr("op", "unknown operation %q (known: %s)", op, strings.Join(OpNames(), ", "))
	}
	s := newStep()
	delete(fields, "op")
	known := jsonFieldNames(s)
	for k := range fields {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return nil, fieldErr(k, "unknown parameter (%s takes none)", op)
			}
			return nil, fieldErr(k, "unknown parameter (%s takes %s)", op, strings.Join(known, ", "))
		}
	}
	for k, v := range fields {
		if err := json.Unmarshal(v, fieldPtr(s, k)); err != nil {
			return nil, fieldErr(k, "%s", typeMessage(err))
		}
	}
	if err := s.normalize(); err != nil {
		return nil, err
	}
	return s, nil
}

func typeMessage(err error) string {
	if e, ok := err.(*json.UnmarshalTypeError); ok {
		return fmt.Sprintf("must be %s, got %s", jsonTypeName(e.Type.Kind()), e.Value)
	}
	if e, ok := err.(*Error); ok {
		return e.Message
	}
	return "has the wrong type"
}

func jsonTypeName(k reflect.Kind) string {
	switch k {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Pointer:
		return "true or false"
	}
	return "a " + k.String()
}

// jsonFieldNames lists the JSON names of a step's parameters.
func jsonFieldNames(s Step) []string {
	t := reflect.TypeOf(s).Elem()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		names = append(names, jsonName(t.Field(i)))
	}
	slices.Sort(names)
	return names
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func fieldPtr(s Step, name string) any {
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		if jsonName(t.Field(i)) == name {
			return v.Field(i).Addr().Interface()
		}
	}
	panic("imgd: no field " + name)
}

func prefixField(err error, prefix string) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	c := *e
	if c.Field == "" {
		c.Field = prefix
	} else {
		c.Field = prefix + "." + c.Field
	}
	return &c
}

// validateOrder checks rules that involve several steps.
func (p Pipeline) validateOrder() error {
	for i, s := range p {
		if _, ok := s.(*Convert); ok && i != len(p)-1 {
			return &Error{Code: CodeInvalidArgument, Field: fmt.Sprintf("steps[%d].op", i),
				Message: "convert must be the last step"}
		}
		if _, ok := s.(*Compress); ok && i != len(p)-1 {
			return &Error{Code: CodeInvalidArgument, Field: fmt.Sprintf("steps[%d].op", i),
				Message: "compress must be the last step"}
		}
		if _, ok := s.(*Responsive); ok && i != len(p)-1 {
			return &Error{Code: CodeInvalidArgument, Field: fmt.Sprintf("steps[%d].op", i),
				Message: "responsive must be the last step (it encodes every variant itself)"}
		}
	}
	return nil
}

// Output returns the final convert step, or nil when the pipeline keeps
// the input's format.
func (p Pipeline) Output() *Convert {
	if len(p) == 0 {
		return nil
	}
	c, _ := p[len(p)-1].(*Convert)
	return c
}

// Compression returns the final compress step, or nil. Its format may be
// auto: the engine's Result.Format says what was written.
func (p Pipeline) Compression() *Compress {
	if len(p) == 0 {
		return nil
	}
	c, _ := p[len(p)-1].(*Compress)
	return c
}

// Canonical returns the pipeline's canonical JSON: every step with its
// defaults filled and its keys sorted, so equal pipelines have equal bytes.
func (p Pipeline) Canonical() []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i, s := range p {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(canonicalStep(s))
	}
	b.WriteByte(']')
	return b.Bytes()
}

// Hash is the hex SHA-256 of the canonical form.
func (p Pipeline) Hash() string {
	sum := sha256.Sum256(p.Canonical())
	return hex.EncodeToString(sum[:])
}

func canonicalStep(s Step) []byte {
	raw, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("imgd: marshal %s step: %v", s.Op(), err))
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(fmt.Sprintf("imgd: remarshal %s step: %v", s.Op(), err))
	}
	m["op"] = s.Op()
	out, err := json.Marshal(m) // maps marshal with sorted keys
	if err != nil {
		panic(fmt.Sprintf("imgd: canonical %s step: %v", s.Op(), err))
	}
	return out
}

// MarshalJSON writes the canonical form.
func (p Pipeline) MarshalJSON() ([]byte, error) { return p.Canonical(), nil }

// UnmarshalJSON parses and validates like ParsePipeline.
func (p *Pipeline) UnmarshalJSON(data []byte) error {
	q, err := ParsePipeline(data)
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Palette is a dither palette: a name (JSON string) or colours (JSON array
// of hex strings).
type Palette struct {
	Name   string
	Colors []RGBA
}

// IsZero reports whether no palette was given.
func (p Palette) IsZero() bool { return p.Name == "" && len(p.Colors) == 0 }

func (p Palette) MarshalJSON() ([]byte, error) {
	if p.Name != "" {
		return json.Marshal(p.Name)
	}
	hexes := make([]string, len(p.Colors))
	for i, c := range p.Colors {
		hexes[i] = c.Hex()
	}
	return json.Marshal(hexes)
}

func (p *Palette) UnmarshalJSON(data []byte) error {
	var name string
	if err := json.Unmarshal(data, &name); err == nil {
		name = strings.ToLower(name)
		if _, ok := namedPalettes[name]; !ok {
			return fieldErr("", "unknown palette %q (known: %s, or a list of colours)", name, strings.Join(PaletteNames(), ", "))
		}
		*p = Palette{Name: name}
		return nil
	}
	var hexes []string
	if err := json.Unmarshal(data, &hexes); err != nil {
		return fieldErr("", "must be a palette name or a list of colours such as [\"#000000\",\"#ffffff\"]")
	}
	if len(hexes) < 2 || len(hexes) > 256 {
		return fieldErr("", "must have 2..256 colours, got %d", len(hexes))
	}
	cs := make([]RGBA, len(hexes))
	for i, h := range hexes {
		c, err := ParseColor(h)
		if err != nil {
			return fieldErr("", "colour %d: %v", i, err)
		}
		c.A = 255
		cs[i] = c
	}
	*p = Palette{Colors: cs}
	return nil
}
