package distri

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// End to end: the embedded cluster renders what `distri generate` renders. ctest's fixture
// capi_e2e_reference sets DISTRI_E2E_MODEL and DISTRI_E2E_REFERENCE.
func TestE2ESameImageAsDistriGenerate(t *testing.T) {
	model, reference := os.Getenv("DISTRI_E2E_MODEL"), os.Getenv("DISTRI_E2E_REFERENCE")
	if model == "" || reference == "" {
		t.Skip("DISTRI_E2E_MODEL / DISTRI_E2E_REFERENCE not set (ctest sets them)")
	}
	want, err := os.ReadFile(reference)
	if err != nil {
		t.Fatal(err)
	}
	zero, one := int32(0), int32(1)
	c, err := NewLocal(LocalOptions{ModelPath: model, GPUs: &zero, CPUActors: &one, StartupTimeout: 4 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r := NewJobRequest("a lighthouse at dawn")
	r.NegativePrompt, r.Width, r.Height, r.Steps, r.Guidance, r.Seed, r.Sampler = "blurry", 128, 128, 4, 5, 42, "euler"
	r.Format = RGB8
	img, err := c.Generate(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if img.Width != 128 || img.Height != 128 || img.Stride != 384 || img.Seed != 42 {
		t.Fatalf("%+v", img)
	}
	if !bytes.Equal(img.Data, want) {
		t.Fatal("image differs from distri generate's")
	}
	// Context cancellation stops a real job.
	r.Steps = 500
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if _, err := c.Generate(ctx2, r); err != context.DeadlineExceeded {
		t.Fatal(err)
	}
}
