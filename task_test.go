package imgd_test

import (
	"errors"
	"testing"

	"github.com/imgd/imgd"
)

func TestTaskStatusCanBecome(t *testing.T) {
	t.Parallel()
	const (
		P = imgd.TaskPending
		R = imgd.TaskProcessing
		C = imgd.TaskCompleted
		E = imgd.TaskCompletedWithErrors
		F = imgd.TaskFailed
		X = imgd.TaskCanceled
	)
	allowed := map[[2]imgd.TaskStatus]bool{
		{P, P}: true, {P, R}: true, {P, C}: true, {P, E}: true, {P, F}: true, {P, X}: true,
		{R, P}: true, {R, R}: true, {R, C}: true, {R, E}: true, {R, F}: true, {R, X}: true,
	}
	for _, from := range imgd.TaskStatuses {
		for _, to := range imgd.TaskStatuses {
			if got, want := from.CanBecome(to), allowed[[2]imgd.TaskStatus{from, to}]; got != want {
				t.Errorf("%s.CanBecome(%s) = %v, want %v", from, to, got, want)
			}
		}
		if from.Final() != (from == C || from == E || from == F || from == X) {
			t.Errorf("%s.Final() = %v", from, from.Final())
		}
		if from.HasResult() != (from == C || from == E) {
			t.Errorf("%s.HasResult() = %v", from, from.HasResult())
		}
	}
	if imgd.TaskStatus("done").CanBecome(P) || P.CanBecome("done") {
		t.Error("CanBecome accepts an unknown status")
	}
}

func TestParseTaskStatus(t *testing.T) {
	t.Parallel()
	for _, s := range imgd.TaskStatuses {
		if got, err := imgd.ParseTaskStatus(string(s)); got != s || err != nil {
			t.Errorf("ParseTaskStatus(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Pending", "done", "cancelled"} {
		if _, err := imgd.ParseTaskStatus(s); imgd.CodeOf(err) != imgd.CodeInvalidArgument {
			t.Errorf("ParseTaskStatus(%q) error = %v, want invalid_argument", s, err)
		}
	}
}

func TestTransitionError(t *testing.T) {
	t.Parallel()
	err := error(imgd.TransitionError("t1", imgd.TaskCompleted, imgd.TaskCanceled))
	if !errors.Is(err, imgd.ErrTaskTransition) || imgd.CodeOf(err) != imgd.CodeInvalidArgument {
		t.Errorf("TransitionError = %v, want invalid_argument wrapping ErrTaskTransition", err)
	}
	if got, want := imgd.MessageOf(err), "status: task t1 is completed and cannot become canceled"; got != want {
		t.Errorf("MessageOf(TransitionError) = %q, want %q", got, want)
	}
}

func TestResultValidate(t *testing.T) {
	t.Parallel()
	valid := imgd.Result{BlobKey: "sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		Format: imgd.FormatPNG, Width: 10, Height: 10, Bytes: 100}
	tests := []struct {
		name    string
		modify  func(*imgd.Result)
		wantErr bool
	}{
		{"valid", func(*imgd.Result) {}, false},
		{"outputs", func(r *imgd.Result) { r.Outputs = []byte(`{"deskew":{"angle":1.5}}`) }, false},
		{"bad outputs", func(r *imgd.Result) { r.Outputs = []byte(`{`) }, true},
		{"no key", func(r *imgd.Result) { r.BlobKey = "" }, true},
		{"no format", func(r *imgd.Result) { r.Format = "" }, true},
		{"zero width", func(r *imgd.Result) { r.Width = 0 }, true},
	}
	for _, tt := range tests {
		r := valid
		tt.modify(&r)
		if err := r.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("Validate(%s) = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
