// Package migrations holds imgd's own tables as goose migrations written once
// for both SQLite and PostgreSQL. River's tables are migrated by River's own
// migrator (rivermigrate), beside these.
//
// Portability rules the SQL here follows:
//   - types both engines know: TEXT, INTEGER, BIGINT, TIMESTAMPTZ (SQLite
//     stores the latter as TEXT in the fixed-width UTC form
//     "2006-01-02 15:04:05.000000", written by the store, so that text order
//     is time order);
//   - JSON is kept as TEXT, byte for byte (the canonical pipeline's hash
//     must not change with a jsonb round trip);
//   - no booleans, no SERIAL/AUTOINCREMENT, no database-side defaults for
//     times: the store writes every time it stores.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/pressly/goose/v3"
)

// FS holds the migration files at its root, as goose expects.
//
//go:embed *.sql
var FS embed.FS

// TableName is goose's version table.
const TableName = "imgd_schema_version"

// CheckProvider runs Check on the database behind p: its applied version
// (0 when nothing was ever migrated) against p's newest migration.
func CheckProvider(ctx context.Context, p *goose.Provider) error {
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		current = 0 // no version table: nothing was ever migrated
	}
	var latest int64
	for _, src := range p.ListSources() {
		latest = max(latest, src.Version)
	}
	return Check(current, latest)
}

// ErrSchema is wrapped by Check's errors.
var ErrSchema = errors.New("database schema does not match this imgd")

// Check compares the database's schema version (current) with the newest
// migration this binary has (latest): processes that share a database
// (imgd api, imgd worker) do not migrate it themselves, and must not run
// against a schema older or newer than the one they were built for.
func Check(current, latest int64) error {
	switch {
	case current < latest:
		return fmt.Errorf("%w: it is at version %d, this imgd needs %d: run `imgd migrate` first", ErrSchema, current, latest)
	case current > latest:
		return fmt.Errorf("%w: it is at version %d, newer than this imgd knows (%d): upgrade imgd", ErrSchema, current, latest)
	}
	return nil
}
