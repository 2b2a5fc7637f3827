"""End to end: the embedded cluster renders what `distri generate` renders (ctest fixture
capi_e2e_reference provides the tiny model and reference.rgb through the environment)."""
import os

import pytest

import distri

MODEL = os.environ.get("DISTRI_E2E_MODEL")
REFERENCE = os.environ.get("DISTRI_E2E_REFERENCE")

pytestmark = pytest.mark.skipif(not (MODEL and REFERENCE),
                                reason="DISTRI_E2E_MODEL / DISTRI_E2E_REFERENCE not set (ctest sets them)")

JOB = dict(negative_prompt="blurry", width=128, height=128, steps=4, guidance=5.0, seed=42,
           sampler="euler")


@pytest.fixture(scope="module")
def client():
    with distri.Client.local(MODEL, gpus=0, cpu_actors=1, startup_timeout=240) as c:
        yield c


def test_same_image_as_distri_generate(client):
    with open(REFERENCE, "rb") as f:
        reference = f.read()
    steps = []
    img = client.generate("a lighthouse at dawn", output_format="rgb8", timeout=240,
                          progress=lambda s, t: steps.append(s), **JOB)
    assert (img.width, img.height, img.stride, img.seed) == (128, 128, 384, 42)
    assert img.data == reference
    assert steps and steps[-1] == 4
    png = client.generate("a lighthouse at dawn", timeout=240, **JOB)
    assert png.data[:8] == b"\x89PNG\r\n\x1a\n"
    try:
        import numpy as np
        import PIL  # noqa: F401
    except ImportError:
        return
    assert np.array_equal(png.to_numpy(), img.to_numpy())


def test_latent_previews(client):
    with client.submit("a lighthouse at dawn", **dict(JOB, steps=24, preview_every=1)) as job:
        assert job.wait(timeout=240).state == "SUCCEEDED"
        p = job.preview()  # the newest one wait() received
        assert p is not None and 1 <= p.step <= 23
        assert (p.width, p.height) == (16, 16)  # 128 px / 8
        assert p.data[:8] == b"\x89PNG\r\n\x1a\n" and p.data[12:24] == b"IHDR" + bytes([0, 0, 0, 16] * 2)
    with client.submit("a lighthouse at dawn", **JOB) as job:
        job.wait(timeout=240)
        assert job.preview() is None  # not asked for


def test_errors_from_the_cluster(client):
    with pytest.raises(distri.InvalidArgumentError, match="multiples of 8"):
        client.submit("a lighthouse at dawn", **dict(JOB, width=100))
    with pytest.raises(distri.InvalidArgumentError, match="UTF-8"):
        client.submit(b"\xc3\x28", **JOB)
    job = client.submit("a lighthouse at dawn", **dict(JOB, steps=500))
    job.cancel()
    assert job.wait(timeout=60).state == "CANCELLED"
    with pytest.raises(distri.CancelledError):
        job.result()
    assert client.cluster_info().actors == 1
