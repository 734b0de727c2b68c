"""Pretrained-network embeddings (``torchvision:<model>``, ``timm:<model>``) on real photos.

torchvision cannot be installed beside the CPU build of torch here (its published wheels link
against torch's CUDA libraries), and nothing may be downloaded in tests. So the packages are stood
in for by modules that build the project's own residual network (``SmallResNet``, whose last layer
is an ``nn.Linear``) through the same calls (``get_model``, ``get_model_weights(...).DEFAULT.url``,
``timm.create_model``): every forward pass below is a real one, through the extractor's own code.
Weight files are written here from seeded networks; the download goes through a ``file://`` URL.
"""

from __future__ import annotations

import hashlib
import sys
import types

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from _photos import photo_array
from hashlearn import create_hasher
from hashlearn.exceptions import DownloadError, InvalidInputError, UnknownNameError
from hashlearn.features import create_features, features_from_dict, features_to_dict
from hashlearn.features.embeddings import MissingPackageError, fetch_weights
from hashlearn.hashers import FeatureHasher, load_hasher
from hashlearn.hashers.deep.backbones import SmallResNet

WIDTHS = (8, 16)


def _classifier() -> torch.nn.Module:
    """A residual network ending in a 10-way ``nn.Linear`` (``head``), like a classifier."""
    return SmallResNet((3, 32, 32), 10, widths=WIDTHS, blocks_per_stage=1)


def _seeded_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return _classifier().state_dict()


@pytest.fixture
def torchvision(monkeypatch):
    """A ``torchvision`` module whose only model, ``resnet18``, is a small residual network."""
    models = types.ModuleType("torchvision.models")
    models.list_models = lambda module=None: ["resnet18"]

    def get_model(name, weights=None):
        assert weights is None, "the extractor must never ask torchvision to download"
        return _classifier()

    models.get_model = get_model
    models.default = types.SimpleNamespace(url="file:///nonexistent/resnet18-00000000.pth")
    models.get_model_weights = lambda name: types.SimpleNamespace(DEFAULT=models.default)
    package = types.ModuleType("torchvision")
    package.models = models
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)
    return models


@pytest.fixture(scope="module")
def photos():
    """12 real colour photos, 48 x 48."""
    return photo_array(48)


def _extractor(**params):
    return create_features("torchvision:resnet18", image_size=32, verbose=False, **params)


def test_features_are_the_pooled_activations_before_the_classifier(torchvision, photos):
    extractor = _extractor(weights=None, random_state=3)
    features = extractor.fit_transform(photos)
    assert features.dtype == np.float32 and features.shape == (len(photos), WIDTHS[-1])
    # by hand: the same seeded network, its classifier dropped, on the resized, normalised input
    torch.manual_seed(3)
    net = _classifier().eval()
    x = torch.from_numpy(photos).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = net.pool(net.stages(net.stem((x - mean) / std))).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    assert extractor.get_config() == {
        "name": "torchvision:resnet18",
        "params": {
            "batch_size": 32,
            "device": None,
            "image_size": 32,
            "random_state": 3,
            "verbose": False,
            "weights": None,
        },
    }


def test_batches_sizes_and_grey_input_give_the_same_features(torchvision, photos):
    whole = _extractor(weights=None).fit_transform(photos)
    np.testing.assert_allclose(
        _extractor(weights=None, batch_size=5).fit_transform(photos), whole, rtol=1e-5, atol=1e-6
    )
    grey = photos.mean(axis=3)
    np.testing.assert_allclose(
        _extractor(weights=None).fit_transform(grey),
        _extractor(weights=None).fit_transform(np.repeat(grey[..., None], 3, axis=3)),
        rtol=1e-5,
        atol=1e-6,
    )
    with pytest.raises(InvalidInputError, match="2 channels"):
        _extractor(weights=None).fit(photos[..., :2])


def test_a_local_weights_file_is_loaded_without_its_classifier(torchvision, photos, tmp_path):
    state = _seeded_state(7)
    save_file(state, tmp_path / "resnet18.safetensors")
    from_file = _extractor(weights=tmp_path / "resnet18.safetensors").fit_transform(photos)
    np.testing.assert_array_equal(
        from_file, _extractor(weights=None, random_state=7).fit_transform(photos)
    )
    del state["head.weight"], state["head.bias"]  # a headless checkpoint fits too
    save_file(state, tmp_path / "headless.safetensors")
    np.testing.assert_array_equal(
        _extractor(weights=tmp_path / "headless.safetensors").fit_transform(photos), from_file
    )
    state["stem.0.weight"] = torch.zeros(8, 1, 3, 3)
    save_file(state, tmp_path / "wrong.safetensors")
    with pytest.raises(InvalidInputError, match=r"stem\.0\.weight"):
        _extractor(weights=tmp_path / "wrong.safetensors").fit(photos)


def test_pretrained_weights_are_downloaded_once_and_cached(
    torchvision, photos, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    published = tmp_path / "published" / "resnet18.pth"
    published.parent.mkdir()
    torch.save(_seeded_state(11), published)
    sha = hashlib.sha256(published.read_bytes()).hexdigest()
    named = published.with_name(f"resnet18-{sha[:8]}.pth")
    published.rename(named)
    torchvision.default.url = named.as_uri()
    expected = _extractor(weights=None, random_state=11).fit_transform(photos)
    np.testing.assert_array_equal(_extractor().fit_transform(photos), expected)
    cached = tmp_path / "torch" / "hub" / "checkpoints" / named.name
    assert cached.read_bytes() == named.read_bytes()
    named.unlink()  # the second fit reads the cache
    np.testing.assert_array_equal(_extractor().fit_transform(photos), expected)


def test_a_failed_or_corrupt_download_says_what_to_do(torchvision, photos, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(DownloadError, match=r"cannot download .* pass weights='<the file>'"):
        _extractor().fit(photos)  # the URL leads nowhere, as when offline
    bad = tmp_path / "resnet18-0123abcd.pth"
    torch.save(_seeded_state(0), bad)
    with pytest.raises(DownloadError, match="does not start with 0123abcd"):
        fetch_weights(bad.as_uri(), bad.name, cache_dir=tmp_path / "cache", verbose=False)
    assert not list((tmp_path / "cache").iterdir())  # nothing half-written is left


def test_missing_packages_and_unknown_models_fail_clearly(photos, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(MissingPackageError, match=r"pip install 'hashlearn\[torchvision\]'"):
        _extractor(weights=None).fit(photos)
    with pytest.raises(MissingPackageError, match=r"pip install 'hashlearn\[timm\]'"):
        create_features("timm:resnet18", weights=None).fit(photos)
    with pytest.raises(InvalidInputError, match="names its model"):
        create_features("torchvision:resnet18", model="vgg16")


def test_unknown_torchvision_model(torchvision, photos):
    with pytest.raises(UnknownNameError, match="'vgg99'"):
        create_features("torchvision:vgg99", weights=None).fit(photos)


def test_saved_in_a_model_file_it_encodes_without_the_weights(
    torchvision, photos, tmp_path, monkeypatch
):
    save_file(_seeded_state(5), tmp_path / "w.safetensors")
    extractor = _extractor(weights=tmp_path / "w.safetensors").fit(photos)
    loaded = features_from_dict(features_to_dict(extractor))
    np.testing.assert_array_equal(loaded.transform(photos), extractor.transform(photos))
    model = FeatureHasher(
        create_features("torchvision:resnet18", image_size=32, weights=tmp_path / "w.safetensors"),
        create_hasher("itq", n_bits=8, random_state=0),
    ).fit(photos)
    model.save(tmp_path / "model.safetensors")
    (tmp_path / "w.safetensors").unlink()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    np.testing.assert_array_equal(
        load_hasher(tmp_path / "model.safetensors").encode(photos), model.encode(photos)
    )


def test_timm_models_take_their_input_size_and_weights_url_from_the_pretrained_config(
    photos, monkeypatch, tmp_path
):
    save_file(_seeded_state(2), tmp_path / "model.safetensors")
    config = types.SimpleNamespace(
        input_size=(3, 40, 40), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), url=None,
        hf_hub_id="timm/resnet18.a1_in1k", hf_hub_filename=None,
    )  # fmt: skip
    timm = types.ModuleType("timm")
    timm.is_model = lambda name: name == "resnet18"
    timm.create_model = lambda name, pretrained=False: _classifier()
    timm.models = types.SimpleNamespace(get_pretrained_cfg=lambda name: config)
    monkeypatch.setitem(sys.modules, "timm", timm)
    fetched = []

    def fetch(url, filename, **kwargs):
        fetched.append((url, filename))
        return tmp_path / "model.safetensors"

    monkeypatch.setattr("hashlearn.features.embeddings.fetch_weights", fetch)
    extractor = create_features("timm:resnet18", verbose=False).fit(photos)
    assert fetched == [
        (
            "https://huggingface.co/timm/resnet18.a1_in1k/resolve/main/model.safetensors",
            "timm--timm--resnet18.a1_in1k--model.safetensors",
        )
    ]
    assert extractor.input_size_ == 40
    np.testing.assert_array_equal(extractor.mean_, [0.5, 0.5, 0.5])
    assert extractor.transform(photos).shape == (len(photos), WIDTHS[-1])
