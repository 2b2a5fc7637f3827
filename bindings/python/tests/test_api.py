"""The Python API against the library's "fake://" cluster: behaviour and bad arguments."""
import ctypes
import struct
import threading
import time

import pytest

import distri


@pytest.fixture
def client():
    with distri.Client.connect("fake://") as c:
        yield c


def small(**kw):
    args = dict(width=64, height=48, steps=4, seed=42)
    args.update(kw)
    return args


def test_version():
    assert distri.version() == distri.__version__
    assert distri.abi_version() == 1


def test_generate_png_and_rgb(client):
    img = client.generate("a lighthouse at dawn", **small())
    assert img.format == "png" and img.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (img.width, img.height, img.seed) == (64, 48, 42)
    raw = client.generate("a lighthouse at dawn", **small(output_format="rgb8"))
    assert raw.format == "rgb8" and raw.stride == 64 * 3 and len(raw.data) == 64 * 48 * 3
    np = pytest.importorskip("numpy")
    pytest.importorskip("PIL")
    assert np.array_equal(img.to_numpy(), raw.to_numpy())


def test_job_lifecycle_and_progress(client):
    seen = []
    with client.submit("a cat", **small(steps=20)) as job:
        assert len(job.id) == 32
        st = job.wait(timeout=10, progress=lambda s, t: seen.append((s, t)))
        assert st.state == "SUCCEEDED" and st.done and st.step == 20
        assert seen and seen[-1] == (20, 20)
        assert [s for s, _ in seen] == sorted(s for s, _ in seen)
        assert job.result().width == 64
        again = client.job(job.id)
        assert again.status().state == "SUCCEEDED"
        again.close()


def test_unicode_prompt(client):
    assert client.generate("un phare à l'aube — 🌅", **small()).width == 64


@pytest.mark.parametrize("prompt", [b"\x80", b"abc\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff", "\ud800"])
def test_invalid_utf8(client, prompt):
    with pytest.raises(distri.InvalidArgumentError, match="not valid UTF-8"):
        client.submit(prompt, **small())


@pytest.mark.parametrize("kw, needle", [
    (dict(width=0), "width"), (dict(height=0), "height"), (dict(width=16385), "width"),
    (dict(width=2 ** 32), "width"), (dict(width=2 ** 32 + 64), "width"), (dict(width=-1), "width"),
    (dict(steps=0), "steps"), (dict(steps=10001), "steps"), (dict(guidance=float("nan")), "guidance"),
    (dict(guidance=float("inf")), "guidance"), (dict(guidance="5"), "guidance"),
    (dict(seed=-1), "seed"), (dict(seed=2 ** 64), "seed"), (dict(gpus=5000), "gpus"),
    (dict(output_format="jpeg"), "output_format"), (dict(sampler="x" * 300), "sampler"),
    (dict(width=1.5), "width"), (dict(width=True), "width"),
    (dict(preview_every=10001), "preview_every"), (dict(preview_every=-1), "preview_every"),
    (dict(guidance_rescale=1.5), "guidance_rescale"), (dict(guidance_rescale=-0.1), "guidance_rescale"),
    (dict(guidance_rescale=float("nan")), "guidance_rescale"), (dict(guidance_rescale="0.5"), "guidance_rescale"),
])
def test_bad_job_params(client, kw, needle):
    with pytest.raises(distri.InvalidArgumentError, match=needle):
        client.submit("p", **small(**kw))


def test_guidance_rescale(client):
    """guidance_rescale: 0.0 by default, 0..1 passes through; the ctypes mirror has the C layout."""
    JobParams = distri._lib.JobParams
    assert JobParams.guidance_rescale.offset == JobParams.preview_every.offset + 8  # 4 bytes of padding
    p = distri.client._job_params("p", **small())
    assert p.struct_size == ctypes.sizeof(JobParams)  # the library's sizeof, written by _init
    assert p.guidance_rescale == 0.0
    assert distri.client._job_params("p", **small(guidance_rescale=1)).guidance_rescale == 1.0
    with client.submit("p", **small(guidance_rescale=0.5)) as job:
        assert job.wait(timeout=10).state == "SUCCEEDED"
    with pytest.raises(distri.InvalidArgumentError, match=r"guidance_rescale: must be a finite number in \[0, 1\]"):
        client.submit("p", **small(guidance_rescale=1.5))


def test_bad_prompts(client):
    with pytest.raises(distri.InvalidArgumentError, match="prompt: required"):
        client.submit(None, **small())
    with pytest.raises(distri.InvalidArgumentError, match="NUL"):
        client.submit("a\0b", **small())
    with pytest.raises(distri.InvalidArgumentError, match="longer than the limit"):
        client.submit("a" * ((1 << 20) + 1), **small())
    with pytest.raises(distri.InvalidArgumentError, match="expected str or bytes"):
        client.submit(42, **small())


def test_cluster_rejection(client):
    with pytest.raises(distri.InvalidArgumentError, match="multiples of 8"):
        client.submit("p", **small(width=63))


def test_cancel_and_timeout(client):
    job = client.submit("slow", **small(steps=10000))
    with pytest.raises(distri.FailedPreconditionError, match="wait for it first"):
        job.result()
    with pytest.raises(distri.DeadlineExceededError):
        job.wait(timeout=0.05)
    with pytest.raises(TimeoutError):  # DeadlineExceededError is a TimeoutError
        job.wait(timeout=0)
    job.cancel()
    assert job.wait(timeout=5).state == "CANCELLED"
    with pytest.raises(distri.CancelledError):
        job.result()
    job.cancel()  # again: fine
    job.close()
    with pytest.raises(distri.InvalidArgumentError, match="closed"):
        job.status()
    with pytest.raises(distri.DeadlineExceededError):
        client.generate("slow", timeout=0.05, **small(steps=10000))


def test_progress_cancels(client):
    job = client.submit("slow", **small(steps=10000))
    st = job.wait(timeout=10, progress=lambda s, t: s >= 3)
    assert st.state == "CANCELLED"
    with pytest.raises(distri.CancelledError):
        client.generate("slow", progress=lambda s, t: True, **small(steps=10000))

    def boom(step, total):
        raise KeyError("stop")
    job = client.submit("slow", **small(steps=10000))
    with pytest.raises(KeyError):
        job.wait(progress=boom)
    assert job.wait(timeout=5).state == "CANCELLED"


def test_cancel_from_another_thread(client):
    job = client.submit("slow", **small(steps=10000))
    threading.Timer(0.05, job.cancel).start()
    assert job.wait(timeout=10).state == "CANCELLED"


def test_failed_job(client):
    job = client.submit("fake:fail", **small(steps=2))
    st = job.wait(timeout=10)
    assert st.state == "FAILED" and "fake failure" in st.error
    with pytest.raises(distri.JobFailedError, match="fake failure"):
        job.result()
    with pytest.raises(distri.JobFailedError):
        client.generate("fake:fail", **small(steps=2))


def test_batch(client):
    jobs = client.submit_batch([dict(prompt="p%d" % i, **small(seed=i)) for i in range(3)])
    assert [j.wait(timeout=10).seed for j in jobs] == [0, 1, 2]
    # The fake cluster got the three in one call (its PNGs' "fake:submitted" text chunk).
    assert all(b"fake:submitted\x00batch of 3" in j.result().data for j in jobs)
    with pytest.raises(distri.InvalidArgumentError, match="width"):
        client.submit_batch([dict(prompt="ok", **small()), dict(prompt="bad", **small(width=0))])
    with pytest.raises(distri.InvalidArgumentError, match=r"params\[1\]"):
        client.submit_batch([dict(prompt="ok", **small()), dict(prompt="bad", **small(width=63))])
    with pytest.raises(distri.InvalidArgumentError, match="no job of the batch was accepted"):
        client.submit_batch([dict(prompt="ok", **small()), dict(prompt="bad", **small(width=63))])
    with pytest.raises(distri.InvalidArgumentError):
        client.submit_batch([])


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_preview(p, every, last_step):
    assert p.data[:8] == PNG_SIGNATURE and p.data[12:16] == b"IHDR"
    assert struct.unpack(">II", p.data[16:24]) == (p.width, p.height) == (64 // 8, 48 // 8)
    assert every <= p.step <= last_step and p.step % every == 0


def test_previews(client):
    with client.submit("p", **small(steps=2)) as job:  # none asked for
        assert job.preview() is None
        job.wait(timeout=10)
        assert job.preview() is None
    with client.submit("slow", **small(steps=10000, preview_every=3)) as job:
        deadline = time.monotonic() + 10
        p = job.preview()
        while p is None and time.monotonic() < deadline:
            time.sleep(0.01)
            p = job.preview()
        _check_preview(p, 3, 9999)
        assert p.attempt == 0
        job.cancel()
        assert job.preview().step >= p.step  # the handle keeps the last one after the end
    with client.submit("p", **small(steps=200, preview_every=2)) as job:
        assert job.wait(timeout=10).state == "SUCCEEDED"  # wait receives previews as it polls
        _check_preview(job.preview(), 2, 198)


def test_preview_bad_arguments(client):
    lib = distri._lib.lib
    buf, step = ctypes.c_void_p(), ctypes.c_uint32()
    assert lib.distri_job_get_preview(None, ctypes.byref(buf), None, ctypes.byref(step)) == 1
    assert b"job is NULL" in lib.distri_last_error()
    with client.submit("slow", **small(steps=10000, preview_every=1)) as job:
        assert lib.distri_job_get_preview(job._h(), None, None, ctypes.byref(step)) == 1
        assert b"out_image is NULL" in lib.distri_last_error()
        assert lib.distri_job_get_preview(job._h(), ctypes.byref(buf), None, None) == 1
        assert b"out_step is NULL" in lib.distri_last_error()
        job.cancel()
    with pytest.raises(distri.InvalidArgumentError, match="closed"):
        job.preview()


def test_version_1_job_params(client):
    """A caller built against distri.h version 1 passes the size before preview_every."""
    p = distri.client._job_params("p", **small(steps=2))
    p.struct_size = distri._lib.JobParams.preview_every.offset
    p.struct_version = 1
    p.preview_every = 7  # beyond struct_size: not read
    lib = distri._lib.lib
    assert lib.distri_job_params_validate(ctypes.byref(p)) == 0
    handle = ctypes.c_void_p()
    assert lib.distri_job_submit(client._h(), ctypes.byref(p), ctypes.byref(handle)) == 0
    with distri.Job(client, handle.value) as job:
        assert job.preview() is None
        assert job.wait(timeout=10).state == "SUCCEEDED"
    p.struct_size -= 1
    assert lib.distri_job_params_validate(ctypes.byref(p)) == 1


def test_random_seed(client):
    assert client.generate("p", **small(seed=None)).width == 64


def test_job_ids(client):
    with pytest.raises(distri.InvalidArgumentError, match="job id"):
        client.job("nope")
    with pytest.raises(distri.NotFoundError):
        client.job("0123456789abcdef0123456789abcdef")


def test_cluster_info(client):
    info = client.cluster_info()
    assert info.nodes == 1 and info.actors == 1


def test_destroyed_client():
    c = distri.Client.connect("fake://")
    job = c.submit("slow", **small(steps=10000))
    c.close()
    c.close()  # idempotent
    with pytest.raises(distri.FailedPreconditionError, match="client was destroyed"):
        job.status()
    with pytest.raises(distri.FailedPreconditionError):
        job.wait(timeout=1)
    with pytest.raises(distri.FailedPreconditionError):
        job.preview()
    with pytest.raises(distri.InvalidArgumentError, match="closed"):
        c.submit("p", **small())
    job.close()


def test_connect_errors():
    with pytest.raises(distri.InvalidArgumentError, match="address: required"):
        distri.Client.connect(None)
    with pytest.raises(distri.InvalidArgumentError, match="tcp://"):
        distri.Client.connect("http://x")
    with pytest.raises(distri.InvalidArgumentError, match="server_public_key"):
        distri.Client.connect("tcp://127.0.0.1:1")
    with pytest.raises(distri.DistriError, match="/nonexistent/keys"):
        distri.Client.connect("tcp://127.0.0.1:1", key_dir="/nonexistent/keys")


def test_local_errors(tmp_path):
    with pytest.raises(distri.InvalidArgumentError, match="model_path"):
        distri.Client.local("")
    with pytest.raises(distri.InvalidArgumentError, match="cpu_actors"):
        distri.Client.local(str(tmp_path), cpu_actors=1000)
    with pytest.raises(distri.InvalidArgumentError, match="dtype"):
        distri.Client.local(str(tmp_path), dtype="fp64")
    with pytest.raises(distri.DistriError):  # not a model folder (or no embedded cluster)
        distri.Client.local(str(tmp_path), startup_timeout=1)


def test_log_level():
    distri.set_log_level("warning")
    with pytest.raises(distri.InvalidArgumentError):
        distri.set_log_level("loud")


def test_concurrent_submitters(client):
    errors = []

    def work(i):
        try:
            for k in range(5):
                client.generate("p", **small(seed=i * 10 + k, steps=2))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
