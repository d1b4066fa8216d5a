package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the result as one JSON document:
// {"findings":[{"code","kind","namespace","name","workload","message","fix"}],"summary":{…}}.
func WriteJSON(w io.Writer, r Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// WriteTable writes one row per finding, each followed by its fix, then a
// summary line.
func WriteTable(w io.Writer, r Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(r.Findings) > 0 {
		fmt.Fprintln(tw, "CODE\tNAMESPACE\tOBJECT\tWORKLOAD\tWHY")
		for _, f := range r.Findings {
			wl := f.Workload
			if wl == "" {
				wl = "-"
			}
			ns := f.Namespace
			if ns == "" {
				ns = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\n", f.Code, ns, f.Kind, f.Name, wl, f.Message)
			fmt.Fprintf(tw, "\t\t\t\tfix: %s\n", f.Fix)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	fmt.Fprintln(w, summaryLine(r.Summary))
	for _, a := range r.Fixes {
		fmt.Fprintln(w, a.String())
	}
	return nil
}

func summaryLine(s Summary) string {
	if s.Findings == 0 {
		return "no findings (" + scannedText(s.Scanned) + ")"
	}
	codes := make([]string, 0, len(s.ByCode))
	for c, n := range s.ByCode {
		codes = append(codes, fmt.Sprintf("%s %d", c, n))
	}
	sort.Strings(codes)
	return fmt.Sprintf("%s: %s (%s)", plural(s.Findings, "finding", "findings"), strings.Join(codes, ", "), scannedText(s.Scanned))
}

func scannedText(m map[string]int) string {
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return "scanned " + strings.Join(parts, ", ")
}
