package sqlite_test

import (
	"testing"

	"github.com/imgd/imgd/internal/store/sqlite"
	"github.com/imgd/imgd/internal/store/storetest"
)

func TestVariantsMigration(t *testing.T) {
	t.Parallel()
	s := openStore(t, sqlite.Options{})
	storetest.RunVariantsMigration(t, harness(s), storetest.Migrations{Down: s.MigrateDown, Up: s.Migrate})
}
