// kstatus-check prints what Flux's kstatus library says about Kubernetes objects.
//
// It reads a JSON object, or a List of them, on stdin and prints one line per object:
// "<name> <status> <message>", status being kstatus' own (InProgress, Current, Failed, ...).
// tests/integration/test_operator_kstatus.py feeds it the statuses the operator writes.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var doc struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		fmt.Fprintln(os.Stderr, "not JSON:", err)
		os.Exit(2)
	}
	items := doc.Items
	if items == nil {
		items = []json.RawMessage{data}
	}
	for _, item := range items {
		// The unstructured decoder keeps integers int64, as kstatus expects.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(item); err != nil {
			fmt.Fprintln(os.Stderr, "not an object:", err)
			os.Exit(2)
		}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, u.GetName(), err)
			os.Exit(1)
		}
		fmt.Printf("%s %s %s\n", u.GetName(), res.Status, res.Message)
	}
}
