// Package manifest reads and writes Kubernetes manifest files the way a
// person wrote them: it splits multi-document YAML, JSON streams and List
// objects into objects, and prints them back in input order, unchanged
// documents byte for byte and changed ones as an edit of their YAML node
// tree, so field order, comments and fields no schema knows survive.
//
// It knows nothing about the policy: callers take each Object, decide what
// it becomes, and hand the result back with Document.SetResult.
package manifest
