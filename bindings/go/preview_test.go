package distri

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// Latent previews against the library's "fake://" cluster (the embedded cluster's: e2e_test.go).

// checkPreview: a PNG whose IHDR says the preview's size, the image's / 8; a step in range.
func checkPreview(t *testing.T, p *Preview, every, lastStep uint32) {
	t.Helper()
	if p == nil {
		t.Fatal("no preview")
	}
	if !bytes.HasPrefix(p.Data, []byte("\x89PNG\r\n\x1a\n")) || len(p.Data) < 24 || string(p.Data[12:16]) != "IHDR" {
		t.Fatalf("not a PNG: % x", p.Data[:min(len(p.Data), 24)])
	}
	w, h := binary.BigEndian.Uint32(p.Data[16:]), binary.BigEndian.Uint32(p.Data[20:])
	if w != p.Width || h != p.Height || w != 64/8 || h != 48/8 {
		t.Fatalf("IHDR %dx%d, Preview %dx%d", w, h, p.Width, p.Height)
	}
	if p.Step < every || p.Step > lastStep || p.Step%every != 0 {
		t.Fatalf("step %d", p.Step)
	}
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}

func TestPreviews(t *testing.T) {
	c := fake(t)
	job, err := c.Submit(small("p")) // none asked for
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	if p, err := job.Preview(); p != nil || err != nil {
		t.Fatal(p, err)
	}

	r := small("slow")
	r.Steps, r.PreviewEvery = 10000, 3
	slow, err := c.Submit(r)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	var p *Preview
	for start := time.Now(); p == nil; time.Sleep(10 * time.Millisecond) {
		if p, err = slow.Preview(); err != nil || time.Since(start) > 10*time.Second {
			t.Fatal("no preview in 10 s:", err)
		}
	}
	checkPreview(t, p, 3, 9999)
	if err := slow.Cancel(); err != nil {
		t.Fatal(err)
	}
	if after, err := slow.Preview(); err != nil || after == nil || after.Step < p.Step {
		t.Fatal("the handle keeps the last preview after the end:", after, err)
	}

	// Wait receives previews as it polls: the last one stays available.
	r = small("p")
	r.Steps, r.PreviewEvery = 200, 2
	waited, err := c.Submit(r)
	if err != nil {
		t.Fatal(err)
	}
	defer waited.Close()
	if st, err := waited.Wait(ctx10(t), nil); err != nil || st.State != Succeeded {
		t.Fatal(st, err)
	}
	p, err = waited.Preview()
	if err != nil {
		t.Fatal(err)
	}
	checkPreview(t, p, 2, 198)
}
