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

import "embed"

// FS holds the migration files at its root, as goose expects.
//
//go:embed *.sql
var FS embed.FS

// TableName is goose's version table.
const TableName = "imgd_schema_version"
