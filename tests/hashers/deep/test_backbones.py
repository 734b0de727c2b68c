import importlib.util
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from hashlearn import create_hasher, load_hasher
from hashlearn.exceptions import (
    FileFormatError,
    InvalidInputError,
    MissingPackageError,
    UnknownNameError,
)
from hashlearn.hashers.deep.backbones import (
    DSHNet,
    HashHead,
    SmallCNN,
    SmallResNet,
    WithinChannelLRN,
    create_backbone,
    describe_backbones,
    list_backbones,
)

BUILT_IN = ["dsh-cifar", "small-cnn", "small-resnet"]
SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # these networks are tiny: on a busy 2-core machine a second intra-op thread mostly waits
    # (a small-resnet forward took 0.9 s with 2 threads and 0.06 s with 1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _build(name, in_shape, n_bits=12, seed=0, **kwargs):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return create_backbone(name, in_shape, n_bits, **kwargs)


def _save_safetensors(net: nn.Module, path) -> None:
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(path))


# -- registry -----------------------------------------------------------------------------------


def test_list_backbones_describes_built_ins_and_families():
    names = list_backbones()
    assert set(BUILT_IN) <= set(names)
    assert "torchvision:<name>" in names and "timm:<name>" in names
    assert names == sorted(names) and list(describe_backbones()) == names
    assert all(isinstance(d, str) and d for d in describe_backbones().values())
    assert sorted(list_backbones(include_families=False)) == BUILT_IN


def test_unknown_name_lists_the_available_ones():
    for name in ["resnet", "keras:resnet18", "torchvision:", "small_cnn"]:
        with pytest.raises(UnknownNameError) as info:
            create_backbone(name, (1, 8, 8), 8)
        message = str(info.value)
        assert repr(name) in message
        assert all(b in message for b in BUILT_IN)
        assert "torchvision:<name>" in message and "timm:<name>" in message


def test_unknown_kwargs_name_the_valid_ones():
    with pytest.raises(InvalidInputError, match=r"'widths'.*valid: channels, dropout, hidden"):
        create_backbone("small-cnn", (1, 8, 8), 8, widths=(8, 16))
    with pytest.raises(
        InvalidInputError, match="valid: blocks_per_stage, dropout, weights, widths"
    ):
        create_backbone("small-resnet", (1, 8, 8), 8, channels=(8, 16))


@pytest.mark.parametrize(
    ("name", "in_shape", "n_bits", "kwargs", "match"),
    [
        ("small-cnn", (1, 8, 8), 8, {"channels": (0, 8)}, r"channels\[0\] must be >= 1"),
        ("small-cnn", (1, 8, 8), 8, {"channels": 12}, "channels must be a sequence"),
        ("small-cnn", (1, 8, 8), 8, {"hidden": 2.5}, "hidden must be an integer"),
        ("small-cnn", (1, 8, 8), 8, {"dropout": 1.0}, "dropout must be <="),
        ("small-resnet", (1, 8, 8), 8, {"widths": ()}, "widths must not be empty"),
        ("small-resnet", (1, 8, 8), 8, {"blocks_per_stage": (1, 2)}, "must have 3 items"),
        ("small-resnet", (1, 8, 8), 8, {"blocks_per_stage": 0}, "blocks_per_stage must be >= 1"),
        ("dsh-cifar", (1, 8, 8), 8, {"channels": (32, 32)}, "must have 3 items"),
        ("dsh-cifar", (1, 7, 28), 8, {}, r"at least 8x8 pixels.*\(1, 7, 28\)"),
        ("small-cnn", (8, 8), 8, {}, "must have 3 items"),
        ("small-cnn", (1, 0, 8), 8, {}, r"in_shape \(c, h, w\)\[1\] must be >= 1"),
        ("small-cnn", (1, 8, 8), 0, {}, "n_bits must be >= 1"),
    ],
)
def test_bad_values_are_refused(name, in_shape, n_bits, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        create_backbone(name, in_shape, n_bits, **kwargs)


# -- every built-in backbone --------------------------------------------------------------------


@pytest.mark.parametrize("in_shape", SHAPES)
@pytest.mark.parametrize("name", BUILT_IN)
def test_output_shape_for_digits_mnist_and_cifar_sizes(name, in_shape):
    net = _build(name, in_shape, n_bits=12)
    out = net(torch.randn(5, *in_shape))
    assert out.shape == (5, 12) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert isinstance(list(net.modules())[-1], HashHead)


@pytest.mark.parametrize("name", BUILT_IN)
def test_loss_goes_down_on_a_tiny_batch(name):
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    target = torch.randn(16, 8).sign()  # memorise fixed random codes
    net = _build(name, (1, 8, 8), n_bits=8)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = ((net(x) - target) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", BUILT_IN)
def test_same_seed_same_weights(name):
    a, b = _build(name, (1, 8, 8), seed=3), _build(name, (1, 8, 8), seed=3)
    c = _build(name, (1, 8, 8), seed=4)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    heads = [next(m for m in net.modules() if isinstance(m, HashHead)) for net in (a, c)]
    assert not torch.equal(heads[0].weight, heads[1].weight)


# -- SmallCNN is unchanged ----------------------------------------------------------------------


def test_small_cnn_state_dict_keys_are_unchanged():
    net = create_backbone("small-cnn", (1, 28, 28), 12)
    assert isinstance(net, SmallCNN)
    assert list(net.state_dict()) == [
        "features.0.weight",
        "features.0.bias",
        "features.3.weight",
        "features.3.bias",
        "head.0.weight",
        "head.0.bias",
        "head.2.weight",
        "head.2.bias",
    ]


def test_small_cnn_equals_the_plain_network_it_always_was():
    # the network as first written (before HashHead): the same seed gives the same weights and
    # outputs, so models saved by earlier versions load and encode the same way
    torch.manual_seed(7)
    reference = nn.ModuleDict(
        {
            "features": nn.Sequential(
                nn.Conv2d(1, 12, 5, padding=2),
                nn.ReLU(),
                nn.MaxPool2d(3, ceil_mode=True),
                nn.Conv2d(12, 8, 5, padding=2),
                nn.ReLU(),
                nn.AvgPool2d(2, ceil_mode=True),
                nn.Flatten(),
            ),
            "head": nn.Sequential(nn.Linear(200, 128), nn.ReLU(), nn.Linear(128, 12)),
        }
    )
    net = _build("small-cnn", (1, 28, 28), n_bits=12, seed=7)
    expected = reference.state_dict()
    assert list(net.state_dict()) == list(expected)
    assert all(torch.equal(v, expected[k]) for k, v in net.state_dict().items())
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(net(x), reference["head"](reference["features"](x)), rtol=0, atol=0)


def test_small_cnn_parameter_count_by_hand_on_28x28():
    # conv1 5x5, 1 -> 12:           1*12*25 + 12     =    312
    # maxpool 3, ceil: 28 -> ceil(28/3) = 10
    # conv2 5x5, 12 -> 8:           12*8*25 + 8      =  2,408
    # avgpool 2, ceil: 10 -> 5;     flatten 8*5*5    =    200 features
    # fc 200 -> 128:                200*128 + 128    = 25,728
    # hash head 128 -> 12:          128*12 + 12      =  1,548
    #                                           total = 29,996
    net = create_backbone("small-cnn", (1, 28, 28), 12)
    counts = [p.numel() for p in net.parameters()]
    print("small-cnn 28x28 parameters:", counts, sum(counts))
    assert counts == [300, 12, 2400, 8, 25600, 128, 1536, 12]
    assert _n_params(net) == 312 + 2408 + 25728 + 1548 == 29996


def test_dsh_cifar_parameter_count_by_hand_and_caffe_geometry():
    # 32x32: conv 5x5 pad 2 keeps the size; each 3x3 stride-2 pooling rounds up like Caffe:
    # 32 -> 16 -> 8 -> 4, so the fc layer reads 64*4*4 = 1024 values (as in the released net)
    # conv1 3 -> 32: 3*32*25 + 32 = 2,432;  conv2 32 -> 32: 32*32*25 + 32 = 25,632
    # conv3 32 -> 64: 32*64*25 + 64 = 51,264;  fc 1024 -> 500: 512,500;  head 500 -> 12: 6,012
    net = create_backbone("dsh-cifar", (3, 32, 32), 12)
    assert net.head[0].in_features == 1024
    assert _n_params(net) == 2432 + 25632 + 51264 + 512500 + 6012 == 597840
    # on 28x28 digits: 28 -> 14 -> 7 -> 3, fc reads 64*9 = 576
    assert create_backbone("dsh-cifar", (1, 28, 28), 12).head[0].in_features == 576


def test_small_resnet_structure():
    # stem 3x3 -> 3 stages of 2 basic blocks (16, 32, 64), stride 2 between stages
    net = create_backbone("small-resnet", (1, 28, 28), 12)
    assert isinstance(net, SmallResNet) and len(net.stages) == 3
    assert [len(s) for s in net.stages] == [2, 2, 2]
    assert [s[0].conv1.stride for s in net.stages] == [(1, 1), (2, 2), (2, 2)]
    assert isinstance(net.stages[0][0].shortcut, nn.Identity)
    assert net.head.in_features == 64
    # stem 176 + stage1 2*4,672 + stage2 14,528 + 18,560 + stage3 57,728 + 73,984 + head 780
    assert _n_params(net) == 175100
    deeper = create_backbone("small-resnet", (3, 8, 8), 4, widths=(8, 16), blocks_per_stage=(1, 3))
    assert [len(s) for s in deeper.stages] == [1, 3] and deeper.head.in_features == 16
    assert deeper(torch.randn(2, 3, 8, 8)).shape == (2, 4)


def test_small_resnet_takes_imagenet_sized_and_tiny_inputs():
    net = create_backbone("small-resnet", (3, 224, 224), 16, widths=(4, 8, 8)).eval()
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 16)
    assert create_backbone("small-resnet", (2, 1, 1), 5)(torch.randn(2, 2, 1, 1)).shape == (2, 5)


# -- building blocks ----------------------------------------------------------------------------


def test_hash_head_is_a_linear_layer_with_optional_dropout():
    head = HashHead(6, 4, dropout=0.5)
    assert list(head.state_dict()) == ["weight", "bias"] and head.n_bits == 4
    x = torch.ones(200, 6)
    head.eval()
    torch.testing.assert_close(head(x), nn.functional.linear(x, head.weight, head.bias))
    head.train()
    torch.manual_seed(0)
    assert not torch.allclose(head(x), nn.functional.linear(x, head.weight, head.bias))
    with pytest.raises(InvalidInputError, match="dropout must be >= 0"):
        HashHead(6, 4, dropout=-0.1)


def test_within_channel_lrn_matches_hand_computation():
    # constant 2 on a 3x3 map, 3x3 zero-padded windows, alpha = beta = 1:
    # centre: mean of x^2 over 9 cells = 4 -> 2 / (1 + 4) = 0.4
    # corner: 4 of 9 cells inside -> mean 16/9 -> 2 / (1 + 16/9) = 0.72
    # edge:   6 of 9 cells inside -> mean 24/9 -> 2 / (1 + 24/9) = 6/11
    y = WithinChannelLRN(3, alpha=1.0, beta=1.0)(torch.full((1, 1, 3, 3), 2.0))
    expected = torch.tensor([[0.72, 6 / 11, 0.72], [6 / 11, 0.4, 6 / 11], [0.72, 6 / 11, 0.72]])
    torch.testing.assert_close(y[0, 0], expected)


def test_dsh_net_layers_follow_the_paper():
    net = create_backbone("dsh-cifar", (3, 32, 32), 48)
    assert isinstance(net, DSHNet)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (5, 5), (1, 1)),
        (32, (5, 5), (1, 1)),
        (64, (5, 5), (1, 1)),
    ]
    pools = [m for m in net.features if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    assert [(type(p).__name__, p.kernel_size, p.stride) for p in pools] == [
        ("MaxPool2d", 3, 2),
        ("AvgPool2d", 3, 2),
        ("AvgPool2d", 3, 2),
    ]
    assert net.head[0].out_features == 500 and net.head[2].n_bits == 48


# -- weights= -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILT_IN)
def test_weights_round_trip_through_safetensors(name, tmp_path):
    net = _build(name, (1, 28, 28), seed=1).eval()
    path = tmp_path / "net.safetensors"
    _save_safetensors(net, path)
    loaded = _build(name, (1, 28, 28), seed=2, weights=path).eval()
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)


def test_weights_from_a_torch_state_dict_file(tmp_path):
    net = _build("small-resnet", (1, 8, 8), seed=1).eval()
    path = tmp_path / "net.pt"
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, path)  # a wrapped checkpoint
    loaded = _build("small-resnet", (1, 8, 8), seed=2, weights=str(path)).eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)


def test_weights_that_do_not_fit_are_named(tmp_path):
    path = tmp_path / "cnn.safetensors"
    _save_safetensors(create_backbone("small-cnn", (1, 28, 28), 12), path)
    with pytest.raises(
        InvalidInputError,
        match=r"shape mismatches: head.2.weight \(file \(12, 128\), network \(16, 128\)\), "
        r"head.2.bias \(",
    ):
        create_backbone("small-cnn", (1, 28, 28), 16, weights=path)
    with pytest.raises(InvalidInputError) as info:
        create_backbone("small-resnet", (1, 28, 28), 12, weights=path)
    message = str(info.value)
    assert "missing keys: stem.0.weight" in message and "(and " in message
    assert "unexpected keys: features.0.bias" in message and "head.2.weight" in message
    state = create_backbone("small-cnn", (1, 28, 28), 12).state_dict()
    del state["head.0.bias"]
    save_file(state, str(tmp_path / "partial.safetensors"))
    with pytest.raises(InvalidInputError, match=r"missing keys: head.0.bias$"):
        create_backbone("small-cnn", (1, 28, 28), 12, weights=tmp_path / "partial.safetensors")


_UNPICKLED = []


def _record_unpickling():
    _UNPICKLED.append(True)
    return torch.zeros(1)


class _CodeRunningObject:
    def __reduce__(self):
        return (_record_unpickling, ())


def test_bad_weight_files_are_refused_without_unpickling(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        create_backbone("small-cnn", (1, 8, 8), 8, weights=tmp_path / "absent.safetensors")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"must end in one of \.safetensors"):
        create_backbone("small-cnn", (1, 8, 8), 8, weights=tmp_path / "w.npz")
    with pytest.raises(InvalidInputError, match="must be a path"):
        create_backbone("small-cnn", (1, 8, 8), 8, weights={"head.2.bias": torch.zeros(8)})
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(FileFormatError, match="cannot read weights file"):
        create_backbone("small-cnn", (1, 8, 8), 8, weights=tmp_path / "broken.safetensors")
    torch.save({"weight": _CodeRunningObject()}, tmp_path / "evil.pt")
    with pytest.raises(FileFormatError, match="cannot read weights file"):
        create_backbone("small-cnn", (1, 8, 8), 8, weights=tmp_path / "evil.pt")
    assert _UNPICKLED == []
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(FileFormatError, match="does not hold a state dict"):
        create_backbone("small-cnn", (1, 8, 8), 8, weights=tmp_path / "list.pth")


# -- used by a deep hasher ----------------------------------------------------------------------


@pytest.mark.parametrize("backbone", ["small-resnet", "dsh-cifar"])
def test_dsh_trains_saves_and_loads_with_each_backbone(backbone, digits_small, tmp_path):
    X, y = digits_small
    hasher = create_hasher(
        "dsh", n_bits=8, backbone=backbone, epochs=1, random_state=0, verbose=False
    ).fit(X[:64], y[:64])
    codes = hasher.encode(X[:10])
    assert codes.shape == (10, 1) and codes.dtype == np.uint8
    hasher.save(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(load_hasher(tmp_path / "model.safetensors").encode(X[:10]), codes)


# -- torchvision and timm -----------------------------------------------------------------------


@pytest.mark.parametrize("family", ["torchvision", "timm"])
def test_missing_family_package_names_the_pip_extra(family, monkeypatch):
    """Issue 18, item 8: a backbone of a package not installed was a bare ModuleNotFoundError
    (a traceback in the CLI); it is a hashlearn error (one line, exit 2), still an import error."""
    monkeypatch.setitem(sys.modules, family, None)  # makes `import family` fail
    with pytest.raises(ModuleNotFoundError, match=rf"pip install 'hashlearn\[{family}\]'") as info:
        create_backbone(f"{family}:resnet18", (3, 32, 32), 12)
    assert info.value.name == family and f"'{family}:resnet18'" in str(info.value)
    assert isinstance(info.value, MissingPackageError)


def test_loading_a_model_never_opens_the_weights_file_it_names(digits_small, tmp_path):
    """Issue 18, item 13: a model file's ``backbone_params["weights"]`` was read again at load, so
    a model file could make the loader probe any local path (an existence oracle). The saved
    network is the model's weights: loading works the same once the starting file is gone."""
    X, y = digits_small
    start = tmp_path / "start.safetensors"
    _save_safetensors(_build("small-cnn", (1, 8, 8), n_bits=8), start)
    hasher = create_hasher(
        "dsh",
        n_bits=8,
        backbone="small-cnn",
        backbone_params={"weights": str(start)},
        epochs=1,
        random_state=0,
        verbose=False,
    ).fit(X[:64], y[:64])
    hasher.save(tmp_path / "model.safetensors")
    start.unlink()
    loaded = load_hasher(tmp_path / "model.safetensors")
    np.testing.assert_array_equal(loaded.encode(X[:10]), hasher.encode(X[:10]))


def test_family_kwargs_are_checked_before_importing():
    with pytest.raises(InvalidInputError, match="valid: dropout, model_kwargs, weights"):
        create_backbone("torchvision:resnet18", (3, 32, 32), 12, widths=(8,))


FAMILY_MODELS = [
    pytest.param(
        "torchvision:resnet18",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("torchvision") is None, reason="torchvision not installed"
        ),
    ),
    pytest.param(
        "timm:resnet18",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("timm") is None, reason="timm not installed"
        ),
    ),
]


def _plain_model(name: str) -> nn.Module:
    family, _, model = name.partition(":")
    if family == "torchvision":
        return pytest.importorskip("torchvision").models.get_model(model, weights=None)
    return pytest.importorskip("timm").create_model(model, pretrained=False)


@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_family_model_gets_a_hash_head_and_grey_input(name):
    for in_shape in [(1, 28, 28), (3, 32, 32)]:
        net = _build(name, in_shape, n_bits=12).eval()
        assert net(torch.randn(2, *in_shape)).shape == (2, 12)
        assert isinstance([m for m in net.modules() if isinstance(m, nn.Linear)][-1], HashHead)
    with pytest.raises(InvalidInputError, match="1- or 3-channel"):
        create_backbone(name, (2, 32, 32), 12)


@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_family_weights_round_trip_and_classification_checkpoint(name, tmp_path):
    net = _build(name, (1, 28, 28), seed=1).eval()
    _save_safetensors(net, tmp_path / "hash.safetensors")
    loaded = _build(name, (1, 28, 28), seed=2, weights=tmp_path / "hash.safetensors").eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    # an RGB classification checkpoint (1000 classes) as a .pth state dict: everything but the
    # classifier loads, and on grey images the net computes what the RGB net does on x repeated
    with torch.random.fork_rng():
        torch.manual_seed(5)
        plain = _plain_model(name).eval()
    torch.save(plain.state_dict(), tmp_path / "imagenet.pth")
    grey = _build(name, (1, 28, 28), seed=3, weights=tmp_path / "imagenet.pth").eval()
    head_name = [n for n, m in plain.named_modules() if isinstance(m, nn.Linear)][-1]
    parent, _, child = head_name.rpartition(".")
    setattr(plain.get_submodule(parent) if parent else plain, child, grey.get_submodule(head_name))
    with torch.no_grad():
        torch.testing.assert_close(grey(x), plain(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", FAMILY_MODELS)
def test_family_errors(name):
    family, _, _ = name.partition(":")
    with pytest.raises(UnknownNameError, match="no-such-model"):
        create_backbone(f"{family}:no-such-model", (3, 32, 32), 12)
    with pytest.raises(InvalidInputError, match="nothing is downloaded"):
        create_backbone(name, (3, 32, 32), 12, model_kwargs={"pretrained": True})
    with pytest.raises(InvalidInputError, match="do not set num_classes"):
        create_backbone(name, (3, 32, 32), 12, model_kwargs={"num_classes": 10})
