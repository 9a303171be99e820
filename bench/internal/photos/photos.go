// Package photos loads the input photos of the service benchmarks.
package photos

import (
	"fmt"
	"os"
	"path/filepath"
)

// Read returns the files matching glob and their contents, in the same
// order; no match is an error.
func Read(glob string) ([]string, [][]byte, error) {
	files, err := filepath.Glob(glob)
	if err != nil {
		return nil, nil, err
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("no photos match %s", glob)
	}
	data := make([][]byte, len(files))
	for i, f := range files {
		if data[i], err = os.ReadFile(f); err != nil {
			return nil, nil, err
		}
	}
	return files, data, nil
}
