package distri

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Go API against the library's "fake://" cluster: behaviour and bad arguments.

func fake(t *testing.T) *Client {
	t.Helper()
	c, err := Connect(ConnectOptions{Address: "fake://"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func small(prompt string) JobRequest {
	r := NewJobRequest(prompt)
	r.Width, r.Height, r.Steps, r.Seed = 64, 48, 4, 42
	return r
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func wantCode(t *testing.T, err error, code Code, needle string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code || !strings.Contains(e.Message, needle) {
		t.Fatalf("got %v, want %v containing %q", err, code, needle)
	}
}

func TestVersion(t *testing.T) {
	if Version() != "0.2.0" || ABIVersion() != 1 {
		t.Fatal(Version(), ABIVersion())
	}
	if err := SetLogLevel(LogWarning); err != nil {
		t.Fatal(err)
	}
	wantCode(t, SetLogLevel(LogLevel(42)), InvalidArgument, "level")
}

func TestGenerate(t *testing.T) {
	c := fake(t)
	img, err := c.Generate(ctx10(t), small("a lighthouse"))
	if err != nil {
		t.Fatal(err)
	}
	if img.Format != PNG || !bytes.HasPrefix(img.Data, []byte("\x89PNG\r\n\x1a\n")) || img.Width != 64 || img.Seed != 42 {
		t.Fatalf("%+v", img)
	}
	r := small("a lighthouse")
	r.Format = RGB8
	raw, err := c.Generate(ctx10(t), r)
	if err != nil || raw.Stride != 64*3 || len(raw.Data) != 64*48*3 {
		t.Fatal(err, raw)
	}
}

func TestProgressAndReopen(t *testing.T) {
	c := fake(t)
	r := small("a cat")
	r.Steps = 20
	job, err := c.Submit(r)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	var steps []uint32
	st, err := job.Wait(ctx10(t), func(s, n uint32) { steps = append(steps, s) })
	if err != nil || st.State != Succeeded || len(steps) == 0 || steps[len(steps)-1] != 20 {
		t.Fatal(err, st, steps)
	}
	again, err := c.OpenJob(job.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if st, _ := again.Status(); st.State != Succeeded {
		t.Fatal(st)
	}
	_, err = c.OpenJob("nope")
	wantCode(t, err, InvalidArgument, "job id")
	_, err = c.OpenJob("0123456789abcdef0123456789abcdef")
	if !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestBadArguments(t *testing.T) {
	c := fake(t)
	for _, bad := range []string{"\x80", "abc\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xff"} {
		_, err := c.Submit(small(bad))
		wantCode(t, err, InvalidArgument, "prompt: not valid UTF-8")
	}
	_, err := c.Submit(small("a\x00b"))
	wantCode(t, err, InvalidArgument, "NUL")
	_, err = c.Submit(small(strings.Repeat("a", 1<<20+1)))
	wantCode(t, err, InvalidArgument, "longer than the limit")
	cases := []struct {
		mod    func(*JobRequest)
		needle string
	}{
		{func(r *JobRequest) { r.Width = 0 }, "width"},
		{func(r *JobRequest) { r.Height = 0 }, "height"},
		{func(r *JobRequest) { r.Width = 16385 }, "width"},
		{func(r *JobRequest) { r.Height = 1<<32 - 1 }, "height"},
		{func(r *JobRequest) { r.Steps = 0 }, "steps"},
		{func(r *JobRequest) { r.Steps = 10001 }, "steps"},
		{func(r *JobRequest) { r.Guidance = -1 }, "guidance"},
		{func(r *JobRequest) { r.Format = 9 }, "output_format"},
		{func(r *JobRequest) { r.GPUs = 5000 }, "gpus"},
		{func(r *JobRequest) { r.Sampler = strings.Repeat("x", 300) }, "sampler"},
		{func(r *JobRequest) { r.PreviewEvery = 10001 }, "preview_every"},
		{func(r *JobRequest) { r.GuidanceRescale = 1.5 }, "guidance_rescale"},
		{func(r *JobRequest) { r.GuidanceRescale = -0.1 }, "guidance_rescale"},
		{func(r *JobRequest) { r.GuidanceRescale = math.NaN() }, "guidance_rescale"},
	}
	for _, tc := range cases {
		r := small("p")
		tc.mod(&r)
		wantCode(t, r.Validate(), InvalidArgument, tc.needle)
		_, err := c.Submit(r)
		wantCode(t, err, InvalidArgument, tc.needle)
	}
	r := small("p")
	r.Width = 63
	_, err = c.Submit(r)
	wantCode(t, err, InvalidArgument, "multiples of 8")
}

func TestGuidanceRescale(t *testing.T) {
	c := fake(t)
	r := small("p")
	if r.GuidanceRescale != 0 {
		t.Fatal(r.GuidanceRescale)
	}
	r.GuidanceRescale = 0.5
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if img, err := c.Generate(ctx10(t), r); err != nil || img.Width != 64 {
		t.Fatal(err, img)
	}
	r.GuidanceRescale = 1.5
	_, err := c.Submit(r)
	wantCode(t, err, InvalidArgument, "guidance_rescale: must be a finite number in [0, 1]")
}

func TestCancelTimeoutFailure(t *testing.T) {
	c := fake(t)
	r := small("slow")
	r.Steps = 10000
	job, err := c.Submit(r)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	_, err = job.Result()
	wantCode(t, err, FailedPrecondition, "wait for it first")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := job.Wait(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if err := job.Cancel(); err != nil {
		t.Fatal(err)
	}
	if st, err := job.Wait(ctx10(t), nil); err != nil || st.State != Canceled {
		t.Fatal(err, st)
	}
	if _, err := job.Result(); !errors.Is(err, ErrCancelled) {
		t.Fatal(err)
	}
	// Generate cancels its job when the context ends.
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, cancel2)
	if _, err := c.Generate(ctx2, r); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	f := small("fake:fail")
	f.Steps = 2
	fj, err := c.Submit(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fj.Close()
	st, err := fj.Wait(ctx10(t), nil)
	if err != nil || st.State != Failed || !strings.Contains(st.Error, "fake failure") {
		t.Fatal(err, st)
	}
	_, err = fj.Result()
	if !errors.Is(err, ErrJobFailed) {
		t.Fatal(err)
	}
	wantCode(t, err, Aborted, "fake failure")
}

func TestCancelFromAnotherGoroutine(t *testing.T) {
	c := fake(t)
	r := small("slow")
	r.Steps = 10000
	job, _ := c.Submit(r)
	defer job.Close()
	time.AfterFunc(50*time.Millisecond, func() { job.Cancel() })
	if st, err := job.Wait(ctx10(t), nil); err != nil || st.State != Canceled {
		t.Fatal(err, st)
	}
}

func TestBatch(t *testing.T) {
	c := fake(t)
	rs := []JobRequest{small("a"), small("b"), small("c")}
	for i := range rs {
		rs[i].Seed = uint64(i)
	}
	jobs, err := c.SubmitBatch(rs)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs {
		st, err := j.Wait(ctx10(t), nil)
		if err != nil || st.Seed != uint64(i) {
			t.Fatal(err, st)
		}
		// The fake cluster got the three in one call (its PNGs' "fake:submitted" text chunk).
		img, err := j.Result()
		if err != nil || !bytes.Contains(img.Data, []byte("fake:submitted\x00batch of 3")) {
			t.Fatal("not submitted as one batch of 3:", err)
		}
		j.Close()
	}
	rs[1].Width = 0
	_, err = c.SubmitBatch(rs)
	wantCode(t, err, InvalidArgument, "params[1]")
	rs[1].Width = 63
	_, err = c.SubmitBatch(rs)
	wantCode(t, err, InvalidArgument, "params[1]")
	_, err = c.SubmitBatch(nil)
	wantCode(t, err, InvalidArgument, "no requests")
}

func TestClosedClientAndJob(t *testing.T) {
	c, err := Connect(ConnectOptions{Address: "fake://"})
	if err != nil {
		t.Fatal(err)
	}
	r := small("slow")
	r.Steps = 10000
	job, err := c.Submit(r)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	_, err = job.Status()
	wantCode(t, err, FailedPrecondition, "client was destroyed")
	_, err = job.Preview()
	wantCode(t, err, FailedPrecondition, "client was destroyed")
	_, err = c.Submit(r)
	wantCode(t, err, InvalidArgument, "closed")
	job.Close()
	_, err = job.Status()
	wantCode(t, err, InvalidArgument, "closed")
	_, err = job.Preview()
	wantCode(t, err, InvalidArgument, "closed")
}

func TestConnectAndLocalErrors(t *testing.T) {
	_, err := Connect(ConnectOptions{})
	wantCode(t, err, InvalidArgument, "address: required")
	_, err = Connect(ConnectOptions{Address: "tcp://127.0.0.1:1"})
	wantCode(t, err, InvalidArgument, "server_public_key")
	_, err = NewLocal(LocalOptions{})
	wantCode(t, err, InvalidArgument, "model_path")
	many := int32(1000)
	_, err = NewLocal(LocalOptions{ModelPath: "/nonexistent", CPUActors: &many})
	wantCode(t, err, InvalidArgument, "cpu_actors")
	if _, err = NewLocal(LocalOptions{ModelPath: "/nonexistent/model"}); err == nil {
		t.Fatal("expected an error")
	}
}

func TestConcurrentSubmitters(t *testing.T) {
	c := fake(t)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for k := 0; k < 5; k++ {
				r := small("p")
				r.Seed, r.Steps = uint64(i*10+k), 2
				if _, err := c.Generate(context.Background(), r); err != nil {
					errs <- err
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	info, err := c.ClusterInfo()
	if err != nil || info.Actors != 1 {
		t.Fatal(err, info)
	}
}
