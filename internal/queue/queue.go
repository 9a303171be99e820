// Package queue holds the River job arguments shared by the stores, which
// insert jobs in the same transaction as their tasks, and internal/worker,
// which works them. It imports nothing from this module.
package queue

import "github.com/riverqueue/river"

// TaskKind is the River job kind of TaskArgs.
const TaskKind = "imgd_task"

// MaxAttempts is how many times a task's job runs before River discards it;
// the worker cancels at once on a permanent error (imgd.Code.Permanent).
const MaxAttempts = 5

// TaskArgs are the arguments of the job that runs one task. The task row
// holds everything else, so a job carries only its id.
type TaskArgs struct {
	TaskID string `json:"task_id"`
}

// Kind implements river.JobArgs.
func (TaskArgs) Kind() string { return TaskKind }

// InsertOpts implements river.JobArgsWithInsertOpts; the store sets the
// priority of each job from its task.
func (TaskArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: river.QueueDefault, MaxAttempts: MaxAttempts}
}
