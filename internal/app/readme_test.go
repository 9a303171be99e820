package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgd/imgd/internal/imgtest"
)

// TestREADMEConfigTable fails when README.md's configuration table misses
// a setting, names its flag wrongly, or lists a variable that does not exist.
func TestREADMEConfigTable(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(imgtest.Root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{} // env -> flag
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		env := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if strings.HasPrefix(env, "IMGD_") {
			rows[env] = strings.Trim(strings.TrimSpace(cells[2]), "`")
		}
	}
	known := map[string]bool{}
	for _, s := range settings {
		known[s.env] = true
		flagName, ok := rows[s.env]
		if !ok {
			t.Errorf("README.md configuration table has no row for %s", s.env)
		} else if flagName != "--"+s.flag {
			t.Errorf("README.md lists %s with flag %q, want --%s", s.env, flagName, s.flag)
		}
	}
	for env := range rows {
		if !known[env] {
			t.Errorf("README.md lists %s, which is not a setting", env)
		}
	}
}
