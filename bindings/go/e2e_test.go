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
	// Latent previews after every step: Wait keeps the newest, 128 / 8 = 16 pixels square.
	pr := r
	pr.Format, pr.Steps, pr.PreviewEvery = PNG, 24, 1
	job, err := c.Submit(pr)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if st, err := job.Wait(ctx, nil); err != nil || st.State != Succeeded {
		t.Fatal(st, err)
	}
	p, err := job.Preview()
	if err != nil || p == nil {
		t.Fatal("no preview after the wait:", err)
	}
	ihdr := []byte("IHDR\x00\x00\x00\x10\x00\x00\x00\x10")
	if p.Step < 1 || p.Step > 23 || p.Width != 16 || p.Height != 16 ||
		!bytes.HasPrefix(p.Data, []byte("\x89PNG\r\n\x1a\n")) || len(p.Data) < 24 || !bytes.Equal(p.Data[12:24], ihdr) {
		t.Fatalf("preview: step %d, %dx%d, % x", p.Step, p.Width, p.Height, p.Data[:min(len(p.Data), 24)])
	}
	// Context cancellation stops a real job.
	r.Steps = 500
	ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if _, err := c.Generate(ctx2, r); err != context.DeadlineExceeded {
		t.Fatal(err)
	}
}
