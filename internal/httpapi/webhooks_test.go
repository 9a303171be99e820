package httpapi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/imgd/imgd/internal/imgtest"
	"github.com/imgd/imgd/internal/webhook"
)

// TestTaskWebhook: a task with webhook_url is delivered once it completes,
// signed with the configured secret, after a receiver that failed once, and
// GET /api/v1/tasks/{id}/webhooks lists both attempts.
func TestTaskWebhook(t *testing.T) {
	// Not parallel: it shortens the package-wide retry schedule.
	defer func(d []time.Duration) { webhook.RetryDelays = d }(webhook.RetryDelays)
	webhook.RetryDelays = []time.Duration{50 * time.Millisecond}

	var (
		mu     sync.Mutex
		bodies [][]byte
		sigs   []string
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, b)
		sigs = append(sigs, r.Header.Get(webhook.SignatureHeader))
		if len(bodies) == 1 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
		}
	}))
	defer recv.Close()

	e := newEnv(t, envOptions{})
	im := e.mustUpload("a.png", imgtest.Read(t, "png/png-gray.png"))
	resp, b := e.submit(`{"image_id":"`+im.ID+`","pipeline":[{"op":"resize","width":20}],"webhook_url":"`+recv.URL+`/hook"}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST task = %d %s", resp.StatusCode, b)
	}
	task := decode[apiTask](t, b)
	e.waitTask(task.ID, 30*time.Second)

	type page struct {
		Items []webhook.Delivery `json:"items"`
	}
	deadline := time.Now().Add(30 * time.Second)
	var got page
	for {
		resp, b := e.do("GET", "/api/v1/tasks/"+task.ID+"/webhooks", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET webhooks = %d %s", resp.StatusCode, b)
		}
		got = decode[page](t, b)
		if len(got.Items) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(got.Items) != 2 || got.Items[0].StatusCode != 503 || got.Items[1].StatusCode != 200 {
		t.Fatalf("deliveries = %+v, want a 503 then a 200", got.Items)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2 {
		t.Fatalf("receiver got %d requests, want 2", len(bodies))
	}
	for i := range bodies {
		if err := webhook.Verify(webhookSecret, sigs[i], bodies[i], time.Minute); err != nil {
			t.Errorf("delivery %d: signature does not verify: %v", i, err)
		}
		if err := webhook.Verify("another secret", sigs[i], bodies[i], time.Minute); err == nil {
			t.Errorf("delivery %d verifies under the wrong secret", i)
		}
	}

	resp, b = e.do("GET", "/api/v1/tasks/nope/webhooks", nil, nil)
	if resp.StatusCode != http.StatusNotFound || errorCode(t, b) != "not_found" {
		t.Errorf("GET webhooks of an unknown task = %d %s, want 404 not_found", resp.StatusCode, b)
	}
}
