package imgd

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// ParsePipelineText reads the short form of a pipeline that command lines
// use, one step per word:
//
//	resize:w=300 convert:webp
//	resize:300x200,fit=cover rotate:90 dither:method=atkinson,palette=pico8 convert:format=png
//
// A word is an op, optionally followed by ':' and comma-separated
// key=value parameters. Keys w, h and q stand for width, height and quality.
// A parameter without '=' is a shorthand: WxH (or Wx, xH) for resize,
// an angle for rotate, a direction for flip, a format for convert and
// compress. Values that read as numbers or booleans become JSON numbers or
// booleans; '#'-prefixed colours and other words stay strings. A word that
// starts with '[' is the JSON form, parsed as a whole.
func ParsePipelineText(words []string) (Pipeline, error) {
	if len(words) == 1 && strings.HasPrefix(strings.TrimSpace(words[0]), "[") {
		return ParsePipeline([]byte(words[0]))
	}
	var steps []map[string]any
	for _, w := range words {
		for f := range strings.FieldsSeq(w) {
			step, err := parseTextStep(f)
			if err != nil {
				return nil, &Error{Code: CodeInvalidArgument, Field: "pipeline", Message: err.Error()}
			}
			steps = append(steps, step)
		}
	}
	data, err := json.Marshal(steps)
	if err != nil {
		return nil, err
	}
	if len(steps) == 0 {
		data = []byte("[]")
	}
	return ParsePipeline(data)
}

var textKeys = map[string]string{"w": "width", "h": "height", "q": "quality"}

func parseTextStep(word string) (map[string]any, error) {
	op, params, _ := strings.Cut(word, ":")
	if op == "" {
		return nil, fmt.Errorf("step %q has no op", word)
	}
	step := map[string]any{"op": op}
	if params == "" {
		return step, nil
	}
	for p := range strings.SplitSeq(params, ",") {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			if err := shorthand(step, op, p); err != nil {
				return nil, fmt.Errorf("step %q: %v", word, err)
			}
			continue
		}
		if full, ok := textKeys[k]; ok {
			k = full
		}
		if k == "" || k == "op" {
			return nil, fmt.Errorf("step %q: bad parameter %q", word, p)
		}
		step[k] = textValue(v)
	}
	return step, nil
}

func shorthand(step map[string]any, op, v string) error {
	switch op {
	case "resize":
		w, h, ok := strings.Cut(v, "x")
		if !ok {
			return fmt.Errorf("resize shorthand %q is not WxH, Wx or xH", v)
		}
		for _, d := range []struct{ key, val string }{{"width", w}, {"height", h}} {
			if d.val == "" {
				continue
			}
			n, err := strconv.Atoi(d.val)
			if err != nil {
				return fmt.Errorf("resize shorthand %q: %s is not an integer", v, d.key)
			}
			step[d.key] = n
		}
	case "rotate":
		step["angle"] = textValue(v)
	case "flip":
		step["direction"] = v
	case "convert", "compress":
		step["format"] = v
	default:
		return fmt.Errorf("parameter %q is not key=value", v)
	}
	return nil
}

func textValue(v string) any {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "xXnN") {
		return f
	}
	if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
		return b
	}
	return v
}
