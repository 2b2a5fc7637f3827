// Package args holds the command-line flags shared by the render and batch examples (the
// same as the C, Python and Rust examples).
package args

import (
	"flag"
	"fmt"
	"os"

	"distri"
)

type Args struct {
	Model, Address, Keys string
	CPU                  bool
	Out                  string
	Size, Steps          uint
	Seed                 uint64
	Sampler, Negative    string
	Prompts              []string
}

func Parse(outFlag, outDefault string) *Args {
	a := &Args{}
	flag.StringVar(&a.Model, "model", "", "model folder: start an embedded cluster")
	flag.StringVar(&a.Address, "address", "", "a running cluster, tcp://HOST:PORT (fake:// for a fake one)")
	flag.StringVar(&a.Keys, "keys", "", "key folder of the running cluster")
	flag.BoolVar(&a.CPU, "cpu", false, "embedded cluster on CPU actors only")
	flag.StringVar(&a.Out, outFlag, outDefault, "output")
	flag.UintVar(&a.Size, "size", 1024, "width and height in pixels")
	flag.UintVar(&a.Steps, "steps", 30, "denoising steps")
	flag.Uint64Var(&a.Seed, "seed", 0, "noise seed")
	flag.StringVar(&a.Sampler, "sampler", "", "ddim, euler or dpmpp_2m (default: the model's)")
	flag.StringVar(&a.Negative, "negative", "", "negative prompt")
	flag.Parse()
	a.Prompts = flag.Args()
	if (a.Model == "") == (a.Address == "") || len(a.Prompts) == 0 {
		fmt.Fprintln(os.Stderr, "usage: (--model DIR [--cpu] | --address ADDR [--keys DIR]) [flags] PROMPT...")
		os.Exit(2)
	}
	return a
}

// Open starts an embedded cluster (--model) or connects (--address).
func Open(a *Args) (*distri.Client, error) {
	if a.Model != "" {
		fmt.Fprintf(os.Stderr, "starting an embedded cluster for %s ...\n", a.Model)
		o := distri.LocalOptions{ModelPath: a.Model}
		if a.CPU {
			zero := int32(0)
			o.GPUs = &zero
		}
		return distri.NewLocal(o)
	}
	return distri.Connect(distri.ConnectOptions{Address: a.Address, KeyDir: a.Keys})
}

func Request(a *Args, prompt string, seed uint64) distri.JobRequest {
	r := distri.NewJobRequest(prompt)
	r.NegativePrompt, r.Sampler = a.Negative, a.Sampler
	r.Width, r.Height, r.Steps, r.Seed = uint32(a.Size), uint32(a.Size), uint32(a.Steps), seed
	return r
}
