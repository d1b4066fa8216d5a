package manifest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Stdin is the input name that means standard input, and StdinName how
// its documents are named in messages.
const (
	Stdin     = "-"
	StdinName = "<stdin>"
)

// ExpandInputs turns file arguments into files: directories are walked
// recursively, in sorted order, for .yaml, .yml and .json files (any case);
// "-" (stdin) may be given once.
func ExpandInputs(paths []string) ([]string, error) {
	var out []string
	stdin := false
	for _, p := range paths {
		if p == Stdin {
			if stdin {
				return nil, errors.New("-f -: stdin given twice")
			}
			stdin = true
			out = append(out, p)
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", p, err)
		}
		if !info.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", p, err)
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// ReadSource reads one input (a file, or "-" for stdin) and returns its
// bytes and the name its documents go by.
func ReadSource(src string, stdin io.Reader) ([]byte, string, error) {
	if src == Stdin {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, StdinName, fmt.Errorf("%s: %w", StdinName, err)
		}
		return data, StdinName, nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, src, fmt.Errorf("%s: %w", src, err)
	}
	return data, src, nil
}
