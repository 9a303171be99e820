// Package apiclient is a small Go client of imgd's HTTP API v1, used by
// `imgd submit` and the service benchmark. Errors the server reports come
// back as *imgd.Error with the server's code.
package apiclient

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imgd/imgd"
)

// Client talks to one imgd server.
type Client struct {
	BaseURL string       // e.g. http://127.0.0.1:8080
	HTTP    *http.Client // nil means http.DefaultClient
}

// New returns a client of the server at baseURL.
func New(baseURL string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/")}
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// Upload streams r to POST /api/v1/images as the multipart field "file":
// the content is never held in memory whole.
func (c *Client) Upload(ctx context.Context, r io.Reader, filename string) (imgd.Image, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, err := mw.CreateFormFile("file", filename)
		if err == nil {
			_, err = io.Copy(fw, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, "POST", c.BaseURL+"/api/v1/images", pr)
	if err != nil {
		pr.Close()
		return imgd.Image{}, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var im imgd.Image
	err = c.do(req, &im, http.StatusCreated, http.StatusOK)
	pr.Close()
	return im, err
}

// TaskRequest is the body of POST /api/v1/tasks.
type TaskRequest struct {
	ImageID    string        `json:"image_id"`
	Pipeline   imgd.Pipeline `json:"pipeline"`
	Priority   string        `json:"priority,omitempty"` // interactive, normal, batch
	WebhookURL string        `json:"webhook_url,omitempty"`
}

// CreateTask queues a task.
func (c *Client) CreateTask(ctx context.Context, tr TaskRequest) (imgd.Task, error) {
	body, err := json.Marshal(tr)
	if err != nil {
		return imgd.Task{}, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.BaseURL+"/api/v1/tasks", bytes.NewReader(body))
	if err != nil {
		return imgd.Task{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	var t imgd.Task
	return t, c.do(req, &t, http.StatusAccepted, http.StatusOK)
}

// Task returns a task's current state.
func (c *Client) Task(ctx context.Context, id string) (imgd.Task, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.BaseURL+"/api/v1/tasks/"+url.PathEscape(id), nil)
	if err != nil {
		return imgd.Task{}, err
	}
	var t imgd.Task
	return t, c.do(req, &t, http.StatusOK)
}

// Result streams a completed task's result into w and returns its size.
func (c *Client) Result(ctx context.Context, id string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.BaseURL+"/api/v1/tasks/"+url.PathEscape(id)+"/result", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return 0, unavailable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, readError(resp)
	}
	return io.Copy(w, resp.Body)
}

// Event is one Server-Sent Event of /api/v1/events.
type Event struct {
	ID      int64           `json:"id"`
	Type    string          `json:"type"`
	TaskID  string          `json:"task_id,omitempty"`
	ImageID string          `json:"image_id,omitempty"`
	Status  string          `json:"status,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Events follows /api/v1/events (filtered by query, e.g. "task_id=…") and
// calls fn for each event until fn returns false, ctx ends or the stream
// breaks. ready, when not nil, is closed once the stream is open, so the
// caller can start the work whose events it wants without missing any.
func (c *Client) Events(ctx context.Context, query string, ready chan<- struct{}, fn func(Event) bool) error {
	u := c.BaseURL + "/api/v1/events"
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.http().Do(req)
	if err != nil {
		return unavailable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	if ready != nil {
		close(ready)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var data bytes.Buffer
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				var ev Event
				if json.Unmarshal(data.Bytes(), &ev) == nil && ev.Type != "" && !fn(ev) {
					return nil
				}
				data.Reset()
			}
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return unavailable(err)
	}
	return ctx.Err()
}

// Wait returns the task once it is final. It follows the task's events
// and, should the stream break, polls.
func (c *Client) Wait(ctx context.Context, id string) (imgd.Task, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	// final receives the task of the final event: the event carries the
	// task as it became final, so asking for it again would only cost a
	// round trip. A zero task (data missing or not this task's) makes the
	// loop below ask.
	final := make(chan imgd.Task, 1)
	go func() {
		_ = c.Events(ctx, "task_id="+url.QueryEscape(id), ready, func(ev Event) bool {
			st := imgd.TaskStatus(ev.Status)
			if !st.Final() {
				return true
			}
			var t imgd.Task
			if json.Unmarshal(ev.Data, &t) != nil || t.ID != id || t.Status != st {
				t = imgd.Task{}
			}
			final <- t
			return false
		})
	}()
	select {
	case <-ready:
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return imgd.Task{}, ctx.Err()
	}
	poll := time.NewTicker(time.Second)
	defer poll.Stop()
	for {
		t, err := c.Task(ctx, id)
		if err != nil {
			return t, err
		}
		if t.Status.Final() {
			return t, nil
		}
		select {
		case t := <-final:
			if t.ID != "" {
				return t, nil
			}
		case <-poll.C:
		case <-ctx.Done():
			return t, ctx.Err()
		}
	}
}

func (c *Client) do(req *http.Request, out any, ok ...int) error {
	resp, err := c.http().Do(req)
	if err != nil {
		return unavailable(err)
	}
	defer resp.Body.Close()
	for _, s := range ok {
		if resp.StatusCode == s {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				return fmt.Errorf("%s %s: decode answer: %w", req.Method, req.URL.Path, err)
			}
			return nil
		}
	}
	return readError(resp)
}

// readError turns an error answer into *imgd.Error.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &body) == nil && body.Error.Code != "" {
		return &imgd.Error{Code: imgd.Code(body.Error.Code), Message: body.Error.Message}
	}
	return imgd.Errorf(imgd.CodeInternal, "server answered %s: %s", resp.Status, strconv.Quote(string(b)))
}

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return imgd.WrapError(imgd.CodeUnavailable, err, "cannot reach the imgd server: "+err.Error())
}
