// Render several prompts at once: one batch submit, then each job's progress and result,
// written as OUT_DIR/NNN.png plus OUT_DIR/manifest.jsonl. Ctrl-C cancels what is left.
//
//	batch --model /models/sdxl --out-dir renders "a cat" "a dog"
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"distri"
	"distri-examples/internal/args"
)

func main() {
	a := args.Parse("out-dir", "batch-out")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := os.MkdirAll(a.Out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	client, err := args.Open(a)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	defer client.Close()
	reqs := make([]distri.JobRequest, len(a.Prompts))
	for i, p := range a.Prompts {
		reqs[i] = args.Request(a, p, a.Seed+uint64(i))
	}
	jobs, err := client.SubmitBatch(reqs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	manifest, err := os.Create(filepath.Join(a.Out, "manifest.jsonl"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	defer manifest.Close()
	enc := json.NewEncoder(manifest)
	failures := 0
	for i, job := range jobs {
		_, err := job.Wait(ctx, func(s, t uint32) { fmt.Fprintf(os.Stderr, "\rjob %d: step %d/%d", i, s, t) })
		fmt.Fprintln(os.Stderr)
		if err != nil {
			job.Cancel()
			fmt.Fprintf(os.Stderr, "job %d (%s): %v\n", i, job.ID, err)
			failures++
			continue
		}
		img, err := job.Result()
		if err != nil {
			fmt.Fprintf(os.Stderr, "job %d (%s): %v\n", i, job.ID, err)
			failures++
			continue
		}
		name := fmt.Sprintf("%03d.png", i)
		if err := os.WriteFile(filepath.Join(a.Out, name), img.Data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			failures++
			continue
		}
		enc.Encode(map[string]interface{}{"file": name, "job_id": job.ID, "seed": img.Seed, "prompt": a.Prompts[i]})
		fmt.Println("wrote", filepath.Join(a.Out, name))
		job.Close()
	}
	if failures > 0 {
		os.Exit(1)
	}
}
