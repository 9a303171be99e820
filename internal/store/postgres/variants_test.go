package postgres_test

import (
	"testing"

	"github.com/imgd/imgd/internal/store/postgres"
	"github.com/imgd/imgd/internal/store/storetest"
)

func TestVariantsMigration(t *testing.T) {
	t.Parallel()
	s := openStore(t, postgres.Options{})
	storetest.RunVariantsMigration(t, harness(s), storetest.Migrations{Down: s.MigrateDown, Up: s.Migrate})
}
