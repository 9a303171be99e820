package sqlstore

import (
	"context"
	"fmt"

	"github.com/imgd/imgd"
)

// TaskCounts returns how many tasks are in each status, whatever their
// owner, for the imgd_queue_tasks metric. Statuses with no task are absent.
// It is one aggregate over the tasks table's status column, cheap enough to
// run at every scrape.
func (s *Store) TaskCounts(ctx context.Context) (map[imgd.TaskStatus]int64, error) {
	rows, err := s.db.Query(ctx, `SELECT status, count(*) FROM tasks GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("count tasks by status: %w", err)
	}
	defer rows.Close()
	counts := make(map[imgd.TaskStatus]int64, len(imgd.TaskStatuses))
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("count tasks by status: %w", err)
		}
		counts[imgd.TaskStatus(status)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tasks by status: %w", err)
	}
	return counts, nil
}
