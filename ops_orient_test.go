package imgd

import (
	"errors"
	"testing"
)

func TestOrientationStepsDefaults(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[{"op":"detect_orientation"}]`, `[{"fix":false,"min_confidence":0.5,"op":"detect_orientation"}]`},
		{`[{"op":"detect_orientation","fix":true,"min_confidence":0}]`, `[{"fix":true,"min_confidence":0,"op":"detect_orientation"}]`},
		{`[{"op":"detect_orientation","min_confidence":1}]`, `[{"fix":false,"min_confidence":1,"op":"detect_orientation"}]`},
		{`[{"op":"deskew"}]`, `[{"max_angle":15,"op":"deskew"}]`},
		{`[{"op":"deskew","max_angle":3.5,"background":"black"}]`, `[{"background":"#000000","max_angle":3.5,"op":"deskew"}]`},
	} {
		p, err := ParsePipeline([]byte(tc.in))
		if err != nil {
			t.Fatalf("ParsePipeline(%s): %v", tc.in, err)
		}
		if got := string(p.Canonical()); got != tc.want {
			t.Errorf("ParsePipeline(%s).Canonical() = %s, want %s", tc.in, got, tc.want)
		}
		again, err := ParsePipeline(p.Canonical())
		if err != nil || again.Hash() != p.Hash() {
			t.Errorf("canonical form of %s does not parse to the same pipeline (%v)", tc.in, err)
		}
	}
}

func TestOrientationStepsErrors(t *testing.T) {
	for _, tc := range []struct{ in, field string }{
		{`[{"op":"detect_orientation","min_confidence":1.5}]`, "steps[0].min_confidence"},
		{`[{"op":"detect_orientation","min_confidence":-0.1}]`, "steps[0].min_confidence"},
		{`[{"op":"detect_orientation","min_confidence":"high"}]`, "steps[0].min_confidence"},
		{`[{"op":"detect_orientation","fix":"yes"}]`, "steps[0].fix"},
		{`[{"op":"detect_orientation","angle":90}]`, "steps[0].angle"},
		{`[{"op":"deskew","max_angle":-1}]`, "steps[0].max_angle"},
		{`[{"op":"deskew","max_angle":30}]`, "steps[0].max_angle"},
		{`[{"op":"deskew","background":"not-a-colour"}]`, "steps[0].background"},
	} {
		_, err := ParsePipeline([]byte(tc.in))
		var e *Error
		if !errors.As(err, &e) || e.Code != CodeInvalidArgument || e.Field != tc.field {
			t.Errorf("ParsePipeline(%s) = %v, want invalid_argument on %s", tc.in, err, tc.field)
		}
	}
}

func TestOrientationStepsText(t *testing.T) {
	p, err := ParsePipelineText([]string{"detect_orientation:fix=true,min_confidence=0.7", "deskew:max_angle=5", "convert:png"})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := p[0].(*DetectOrientation)
	if !ok || !d.Fix || *d.MinConfidence != 0.7 {
		t.Errorf("step 0 = %#v", p[0])
	}
	if s, ok := p[1].(*Deskew); !ok || s.MaxAngle != 5 {
		t.Errorf("step 1 = %#v", p[1])
	}
}
