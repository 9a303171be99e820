package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/imgd/imgd"
)

// WebhookDelivery is the record of one webhook delivery attempt (table
// webhook_deliveries). Its fields match webhook.Delivery one for one, so the
// two convert into each other; the store does not import the webhook
// package.
type WebhookDelivery struct {
	ID         string
	TaskID     string
	URL        string
	EventID    string
	Attempt    int
	StatusCode int // 0: no response
	Error      string
	DurationMS int64
	CreatedAt  time.Time
}

const deliveryColumns = `id, task_id, url, event_id, attempt, status_code, error, duration_ms, created_at`

func scanDelivery(r Rows) (WebhookDelivery, error) {
	var d WebhookDelivery
	err := r.Scan(&d.ID, &d.TaskID, &d.URL, &d.EventID, &d.Attempt, &d.StatusCode, &d.Error, &d.DurationMS, &d.CreatedAt)
	d.CreatedAt = d.CreatedAt.UTC()
	return d, err
}

// AddWebhookDelivery stores d, filling ID (when empty) and CreatedAt, and
// returns it. A task that does not exist (deleted meanwhile) is
// CodeNotFound.
func (s *Store) AddWebhookDelivery(ctx context.Context, d WebhookDelivery) (WebhookDelivery, error) {
	if d.ID == "" {
		d.ID = imgd.NewID()
	}
	d.CreatedAt = s.now()
	_, err := s.db.Exec(ctx, `INSERT INTO webhook_deliveries (`+deliveryColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.ID, d.TaskID, d.URL, d.EventID, d.Attempt, d.StatusCode, d.Error, d.DurationMS, d.CreatedAt)
	switch {
	case errors.Is(err, ErrForeignKey):
		return WebhookDelivery{}, &imgd.Error{Code: imgd.CodeNotFound, Message: fmt.Sprintf("task %s not found", d.TaskID), Err: err}
	case err != nil:
		return WebhookDelivery{}, fmt.Errorf("insert webhook delivery of task %s: %w", d.TaskID, err)
	}
	return d, nil
}

// ListWebhookDeliveries returns the delivery records of a task, oldest
// first; none (an empty slice) for a task without any or that does not
// exist.
func (s *Store) ListWebhookDeliveries(ctx context.Context, taskID string) ([]WebhookDelivery, error) {
	out, err := queryAll(ctx, s.db, scanDelivery, `SELECT `+deliveryColumns+` FROM webhook_deliveries
		WHERE task_id = $1 ORDER BY created_at, id`, taskID)
	if err != nil {
		return nil, fmt.Errorf("list webhook deliveries of task %s: %w", taskID, err)
	}
	if out == nil {
		out = []WebhookDelivery{}
	}
	return out, nil
}
