"""OrthoHash, GreedyHash and DPN: hand-computed loss values, float64 gradient checks, the
straight-through sign, class codes, and the methods' networks and label kinds."""

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from hashlearn import create_hasher, load_hasher
from hashlearn.exceptions import InvalidInputError, NotFittedError
from hashlearn.hashers.deep.backbones import create_backbone
from hashlearn.hashers.deep.losses import (
    DPNLoss,
    GreedyHashLoss,
    OrthoHashLoss,
    class_codes,
    create_loss,
    straight_through_sign,
)
from hashlearn.hashers.deep.trainer import Trainer, TrainerConfig


def arange(n: int) -> torch.Tensor:
    return torch.arange(n)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def with_codebook(loss, labels, codebook):
    """``loss`` set up for ``labels``, then given a known codebook."""
    loss.setup(len(labels), len(codebook[0]), labels, gen())
    loss.codebook = torch.tensor(codebook, dtype=torch.float32)
    return loss


# ---------------------------------------------------------------- DPN


def test_dpn_matches_hand_computation():
    v = torch.tensor([[0.5, -2.0], [1.5, 0.2]])
    loss = with_codebook(DPNLoss(margin=1.0), torch.tensor([0, 1]), [[1.0, 1.0], [1.0, -1.0]])
    # sample 0, target [1, 1]:  max(1 - 0.5, 0) + max(1 + 2, 0) = 0.5 + 3 = 3.5
    # sample 1, target [1, -1]: max(1 - 1.5, 0) + max(1 + 0.2, 0) = 0 + 1.2 = 1.2
    assert loss(v, torch.tensor([0, 1]), arange(2)).item() == pytest.approx(2.35, abs=1e-6)
    # margin 2: 1.5 + 4 and 0.5 + 2.2
    loss.margin = 2.0
    assert loss(v, torch.tensor([0, 1]), arange(2)).item() == pytest.approx(4.1, abs=1e-6)


def test_dpn_multilabel_sums_the_hinges_of_every_label():
    v = torch.tensor([[0.5, -2.0], [1.5, 0.2]])
    labels = torch.tensor([[1, 1], [0, 0]], dtype=torch.bool)
    loss = with_codebook(DPNLoss(margin=1.0), labels, [[1.0, 1.0], [1.0, -1.0]])
    # sample 0: class 0 as above 3.5, class 1 (v t = [0.5, 2]): 0.5 + 0 -> 4.0
    # sample 1 has no label and adds nothing; mean over the 2 samples
    assert loss(v, labels, arange(2)).item() == pytest.approx(2.0, abs=1e-6)


# ---------------------------------------------------------------- OrthoHash


def _softmax_ce(logits, target_weights):
    top = max(logits)
    log_z = top + math.log(sum(math.exp(z - top) for z in logits))
    return -sum(w * (z - log_z) for z, w in zip(logits, target_weights, strict=True))


def test_orthohash_matches_hand_computation():
    v = torch.tensor([[3.0, 4.0], [-1.0, 2.0]])
    loss = with_codebook(
        OrthoHashLoss(scale=8.0, margin=0.2), torch.tensor([0, 1]), [[1.0, 1.0], [1.0, -1.0]]
    )
    # cos(v, o) = v.o / (||v|| sqrt 2): sample 0: 7 / (5 sqrt 2), -1 / (5 sqrt 2)
    #                                  sample 1: 1 / (sqrt 5 sqrt 2), -3 / (sqrt 5 sqrt 2)
    c0 = [7 / (5 * math.sqrt(2)), -1 / (5 * math.sqrt(2))]
    c1 = [1 / math.sqrt(10), -3 / math.sqrt(10)]
    # the margin 0.2 is taken off the true class's cosine, then everything is scaled by 8
    ce0 = _softmax_ce([8 * (c0[0] - 0.2), 8 * c0[1]], [1, 0])
    ce1 = _softmax_ce([8 * c1[0], 8 * (c1[1] - 0.2)], [0, 1])
    value = loss(v, torch.tensor([0, 1]), arange(2)).item()
    assert value == pytest.approx((ce0 + ce1) / 2, abs=1e-6)
    # the quantisation term: 1 - cos(v, sign v), sign(v) = [1, 1] and [-1, 1]
    q = ((1 - 7 / (5 * math.sqrt(2))) + (1 - 3 / math.sqrt(10))) / 2
    loss.lambda_q = 0.5
    value = loss(v, torch.tensor([0, 1]), arange(2)).item()
    assert value == pytest.approx((ce0 + ce1) / 2 + 0.5 * q, abs=1e-6)


def test_orthohash_multilabel_is_label_smoothed_cross_entropy():
    v = torch.tensor([[3.0, 4.0], [-1.0, 2.0]])
    labels = torch.tensor([[1, 1], [0, 0]], dtype=torch.bool)
    loss = with_codebook(OrthoHashLoss(scale=8.0, margin=0.2), labels, [[1.0, 1.0], [1.0, -1.0]])
    c0 = [7 / (5 * math.sqrt(2)), -1 / (5 * math.sqrt(2))]
    # both classes are labels: the margin applies to both, the target is (1/2, 1/2)
    ce0 = _softmax_ce([8 * (c0[0] - 0.2), 8 * (c0[1] - 0.2)], [0.5, 0.5])
    # sample 1 has no label and adds nothing
    assert loss(v, labels, arange(2)).item() == pytest.approx(ce0 / 2, abs=1e-6)


def test_orthohash_only_sees_the_direction_of_the_outputs():
    labels = torch.tensor([0, 1, 2, 1])
    loss = OrthoHashLoss()
    loss.setup(4, 8, labels, gen())
    v = torch.randn(4, 8, generator=gen(3))
    assert loss(3.7 * v, labels, arange(4)).item() == pytest.approx(
        loss(v, labels, arange(4)).item(), abs=1e-6
    )


# ---------------------------------------------------------------- GreedyHash


def _greedy(labels, weights, alpha):
    loss = GreedyHashLoss(alpha=alpha)
    loss.setup(len(labels), len(weights[0]), labels, gen())
    with torch.no_grad():
        loss.classifier.copy_(torch.tensor(weights))
    return loss


def test_greedyhash_matches_hand_computation():
    h = torch.tensor([[0.5, -2.0], [-0.1, 0.0]])
    labels = torch.tensor([2, 0])
    loss = _greedy(labels, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], alpha=0.1)
    # b = sign(h) = [1, -1], [-1, 1] (sign(0) = +1); logits b W^T = [1, -1, 0], [-1, 1, 0]
    log_z = math.log(math.e + 1 / math.e + 1)
    classification = ((log_z - 0.0) + (log_z + 1.0)) / 2  # true classes 2 and 0
    # | |h| - 1 |^3: 0.125, 1, 0.729, 1 -> mean 0.7135
    penalty = (0.125 + 1 + 0.729 + 1) / 4
    value = loss(h, labels, arange(2)).item()
    assert value == pytest.approx(classification + 0.1 * penalty, abs=1e-6)


def test_straight_through_sign_passes_the_gradient_unchanged():
    h = torch.tensor([-1.5, -0.0, 0.0, 0.2, 3.0], dtype=torch.float64, requires_grad=True)
    b = straight_through_sign(h)
    assert b.tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]
    w = torch.tensor([0.3, -2.0, 1.0, 4.0, -0.5], dtype=torch.float64)
    (w * b).sum().backward()
    assert torch.equal(h.grad, w)  # d(w . sign h)/dh would be 0 almost everywhere


def test_greedyhash_gradient_is_the_straight_through_one_by_hand():
    h = torch.tensor([[0.5, -2.0], [-0.1, 0.3]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([2, 0])
    W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    loss = _greedy(labels, W.tolist(), alpha=0.1)
    loss(h, labels, arange(2)).backward()
    # cross-entropy: d/d logits = (softmax - onehot) / n, logits = b W^T -> d/db = that @ W,
    # passed to h unchanged
    b = np.array([[1.0, -1.0], [-1.0, 1.0]])
    logits = b @ W.T
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    d_b = (p - np.eye(3)[[2, 0]]) @ W / 2
    # penalty: alpha d/dh mean(| |h| - 1 |^3) = alpha 3 (|h| - 1)^2 sign(|h| - 1) sign(h) / 4
    hv = h.detach().numpy()
    d_pen = 0.1 * 3 * (np.abs(hv) - 1) ** 2 * np.sign(np.abs(hv) - 1) * np.sign(hv) / 4
    np.testing.assert_allclose(h.grad.numpy(), d_b + d_pen, atol=1e-10)
    # the classifier's gradient is the ordinary one: (softmax - onehot)^T b / n
    np.testing.assert_allclose(
        loss.classifier.grad.numpy(), (p - np.eye(3)[[2, 0]]).T @ b / 2, atol=1e-6
    )


def test_greedyhash_refuses_multilabel_indicators_and_runs_only_after_setup():
    indicators = torch.tensor([[1, 0], [1, 1]], dtype=torch.bool)
    with pytest.raises(InvalidInputError, match="one class label per sample"):
        GreedyHashLoss().setup(2, 4, indicators, gen())
    with pytest.raises(NotFittedError, match="setup"):
        GreedyHashLoss()(torch.randn(2, 4), torch.tensor([0, 1]), arange(2))


def test_greedyhash_classifier_is_a_seeded_parameter_of_the_loss():
    labels = torch.tensor([0, 1, 2, 1])
    first, second = GreedyHashLoss(), GreedyHashLoss()
    first.setup(4, 6, labels, gen(0))
    second.setup(4, 6, labels, gen(0))
    assert torch.equal(first.classifier, second.classifier)
    assert first.classifier.shape == (3, 6)
    assert first.classifier.abs().max() <= 1 / math.sqrt(6)
    assert [name for name, _ in first.named_parameters()] == ["classifier"]


# ---------------------------------------------------------------- gradients in float64


def _ready(loss, labels, n_bits):
    loss.setup(len(labels), n_bits, labels, gen())
    return loss.eval()


GRAD_CASES = {
    "dpn": lambda: DPNLoss(margin=1.0),
    "dpn-hadamard": lambda: DPNLoss(margin=0.5, codes="hadamard"),
    "orthohash": lambda: OrthoHashLoss(),
    "orthohash-quantisation": lambda: OrthoHashLoss(scale=4.0, margin=0.3, lambda_q=0.5),
}
LABELS = {
    "class": torch.tensor([0, 1, 0, 2, 1, 2]),
    "multi": torch.tensor(
        [[1, 0, 1], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool
    ),
}


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradient_is_correct(name, kind):
    z = torch.randn(6, 4, dtype=torch.float64, generator=gen(1)).requires_grad_(True)
    labels = LABELS[kind]
    loss = _ready(GRAD_CASES[name](), labels, 4)
    assert torch.autograd.gradcheck(lambda x: loss(x, labels, arange(6)), (z,))


def test_greedyhash_differentiable_parts_pass_gradcheck():
    labels = LABELS["class"]
    z = torch.randn(6, 4, dtype=torch.float64, generator=gen(1)).requires_grad_(True)
    loss = _ready(GreedyHashLoss(alpha=0.7), labels, 4)
    # the classifier, outputs fixed: an ordinary softmax cross-entropy of W
    W = loss.classifier.detach().double().requires_grad_(True)

    def of_classifier(w):
        return functional_call(loss, {"classifier": w}, (z.detach(), labels, arange(6)))

    assert torch.autograd.gradcheck(of_classifier, (W,))
    # the penalty: with W = 0 the cross-entropy is log 3 whatever the codes and passes no
    # gradient back, so the loss in h is log 3 + alpha mean(| |h| - 1 |^3), smooth away from 0
    # and +-1
    loss.classifier = torch.nn.Parameter(torch.zeros(3, 4, dtype=torch.float64))
    value = loss(z, labels, arange(6))
    expected = math.log(3) + 0.7 * ((z.detach().abs() - 1).abs() ** 3).mean().item()
    assert value.item() == pytest.approx(expected, abs=1e-12)
    assert torch.autograd.gradcheck(lambda x: loss(x, labels, arange(6)), (z,))


# ---------------------------------------------------------------- class codes


def test_class_codes_are_seeded_fair_coins_or_hadamard_rows():
    draw = lambda seed: class_codes(10, 12, gen(seed))  # noqa: E731
    assert torch.equal(draw(0), draw(0)) and not torch.equal(draw(0), draw(1))
    assert set(draw(0).unique().tolist()) == {-1.0, 1.0}
    many = class_codes(200, 64, gen(0))
    assert abs(float((many > 0).float().mean()) - 0.5) < 0.02  # fair coins
    rows = class_codes(8, 16, gen(0), kind="hadamard")
    distances = (16 - rows @ rows.T) / 2
    assert distances[~torch.eye(8, dtype=torch.bool)].min() == 8
    with pytest.raises(InvalidInputError, match="bernoulli"):
        class_codes(3, 8, gen(0), kind="sobol")
    with pytest.raises(InvalidInputError, match="codes"):
        OrthoHashLoss(codes="sobol")


def test_factory_defaults_are_the_papers():
    ortho = create_loss("orthohash", 16)
    assert (ortho.scale, ortho.margin, ortho.lambda_q, ortho.code_kind) == (
        8.0,
        0.2,
        0.0,
        "bernoulli",
    )
    assert create_loss("greedyhash", 16).alpha == 0.1
    dpn = create_loss("dpn", 16)
    assert (dpn.margin, dpn.code_kind) == (1.0, "bernoulli")
    with pytest.raises(InvalidInputError, match="margin"):
        DPNLoss(margin=0)


# ---------------------------------------------------------------- the methods


def test_orthohash_network_ends_with_batch_normalisation(digits_small, tmp_path):
    X, y = digits_small
    hasher = create_hasher(
        "orthohash", n_bits=12, epochs=1, batch_size=64, random_state=0, verbose=False
    )
    hasher.fit(X, y)
    norm = hasher.net_.norm
    assert isinstance(norm, torch.nn.BatchNorm1d) and norm.num_features == 12
    assert norm.num_batches_tracked > 0  # trained, and used with its running statistics
    outputs = hasher.transform(X)
    # encoding uses the running statistics, whatever the batch
    np.testing.assert_allclose(hasher.transform(X[:5]), outputs[:5], atol=1e-5)
    hasher.save(tmp_path / "orthohash.safetensors")
    np.testing.assert_array_equal(
        load_hasher(tmp_path / "orthohash.safetensors").transform(X), outputs
    )


def test_label_kinds_of_the_methods(digits_small):
    X, y = digits_small
    indicators = np.stack([y == c for c in range(10)] + [y % 2 == 0], axis=1)
    for name in ("orthohash", "dpn"):
        hasher = create_hasher(name, n_bits=8, epochs=1, random_state=0, verbose=False)
        assert hasher.fit(X, indicators).encode(X).shape == (len(X), 1)
    with pytest.raises(InvalidInputError, match="one class label per sample"):
        create_hasher("greedyhash", n_bits=8, epochs=1, verbose=False).fit(X, indicators)


class _CrashingNet(torch.nn.Module):
    """A small CNN that raises on its ``crash_at``-th training forward pass."""

    def __init__(self, crash_at=None, seed=0):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.inner = create_backbone("small-cnn", (1, 8, 8), 8)
        self.crash_at, self.calls = crash_at, 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if self.calls == self.crash_at:
                raise RuntimeError("simulated crash")
        return self.inner(x)


def test_greedyhash_classifier_is_trained_checkpointed_and_resumed(digits_small, tmp_path):
    X, y = digits_small
    train = (X[:200], y[:200])
    config = {"epochs": 3, "batch_size": 64, "random_state": 3, "device": "cpu", "verbose": False}

    class Recording(GreedyHashLoss):
        def setup(self, *args):
            super().setup(*args)
            self.initial = self.classifier.detach().clone()

    reference_net, reference = _CrashingNet(), Recording()
    Trainer(TrainerConfig(**config)).fit(reference_net, reference, train)
    assert reference.classifier.shape == (10, 8)
    assert (reference.classifier - reference.initial).abs().max() > 1e-3  # trained by the run
    # 200 images in batches of 64: 4 batches per epoch; the 6th forward pass is in epoch 2
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(TrainerConfig(**config, checkpoint_dir=tmp_path)).fit(
            _CrashingNet(crash_at=6), GreedyHashLoss(), train
        )
    resumed_net, resumed = _CrashingNet(seed=9), GreedyHashLoss()
    Trainer(TrainerConfig(**config, checkpoint_dir=tmp_path, resume=True)).fit(
        resumed_net, resumed, train
    )
    assert torch.equal(resumed.classifier, reference.classifier)
    for key, value in reference_net.state_dict().items():
        assert torch.equal(resumed_net.state_dict()[key], value), key
