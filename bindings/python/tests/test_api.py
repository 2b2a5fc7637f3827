"""The Python API against the library's "fake://" cluster: behaviour and bad arguments."""
import threading

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
])
def test_bad_job_params(client, kw, needle):
    with pytest.raises(distri.InvalidArgumentError, match=needle):
        client.submit("p", **small(**kw))


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
    with pytest.raises(distri.InvalidArgumentError, match="width"):
        client.submit_batch([dict(prompt="ok", **small()), dict(prompt="bad", **small(width=0))])
    with pytest.raises(distri.InvalidArgumentError, match=r"params\[1\]"):
        client.submit_batch([dict(prompt="ok", **small()), dict(prompt="bad", **small(width=63))])
    with pytest.raises(distri.InvalidArgumentError):
        client.submit_batch([])


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
