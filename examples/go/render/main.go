// Render one image through distri's Go bindings; Ctrl-C cancels the job.
//
//	render --model /models/sdxl --out lighthouse.png "a lighthouse at dawn"
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"distri-examples/internal/args"
)

func main() {
	a := args.Parse("out", "render.png")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	client, err := args.Open(a)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	defer client.Close()
	job, err := client.Submit(args.Request(a, a.Prompts[0], a.Seed))
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	defer job.Close()
	_, err = job.Wait(ctx, func(step, total uint32) { fmt.Fprintf(os.Stderr, "\rstep %d/%d", step, total) })
	fmt.Fprintln(os.Stderr)
	if err != nil { // interrupted: the job is not wanted any more
		job.Cancel()
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	img, err := job.Result()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(a.Out, img.Data, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %s (%dx%d, seed %d, %.0f ms on %d actor(s))\n", a.Out, img.Width, img.Height, img.Seed,
		img.TotalMs, img.GangSize)
}
