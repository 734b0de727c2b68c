import numpy as np
import pytest
import torch

from hashlearn import create_hasher
from hashlearn.hashers.deep.losses import DSHLoss, pairwise_similarity


def test_dsh_loss_matches_hand_computation_on_three_codes():
    b = torch.tensor([[1.0, -1.0], [0.5, 0.5], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1])
    # pairs (squared distance, similar?): (1,2): 0.25 + 2.25 = 2.5, similar     -> 1/2 * 2.5         = 1.25
    #                                     (1,3): 4 + 1 = 5, dissimilar          -> 1/2 * max(4-5, 0) = 0
    #                                     (2,3): 2.25 + 0.25 = 2.5, dissimilar  -> 1/2 * (4 - 2.5)  = 0.75
    # regulariser || |b| - 1 ||_1 per code: 0, 1, 1; per pair alpha (r_i + r_j) = 0.1, 0.1, 0.2
    # loss = mean over the 3 pairs = (1.25 + 0 + 0.75 + 0.1 + 0.1 + 0.2) / 3 = 0.8
    loss = DSHLoss(margin=4.0, alpha=0.1)(b, labels, torch.arange(3))
    assert loss.item() == pytest.approx(0.8, abs=1e-6)


def test_dsh_alpha_against_the_authors_caffe_layer_by_hand():
    # three codes, margin 4, no output at a kink of | |b| - 1 | (1.5 and 0.5 only)
    b = torch.tensor([[1.5, 0.5], [0.5, 1.5], [0.5, 0.5]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    # pairs: (0,1) similar, D = 1 + 1 = 2; (0,2) dissimilar, D = 1; (1,2) dissimilar, D = 1
    # half terms 1/2 * 2 = 1, 1/2 * (4 - 1) = 1.5, 1.5 -> P = 4 / 3; || |b| - 1 ||_1 = 1 each: R = 1
    # hashlearn: P + 2 alpha R
    alpha = 0.01
    ours = DSHLoss(margin=4.0, alpha=alpha)(b, labels, torch.arange(3))
    assert ours.item() == pytest.approx(4 / 3 + 2 * alpha, abs=1e-6)
    # the Caffe layer's reported value at tradeoff t: (2 + 3 + 3) / (3 * 2) + t * 3 / 3 = P + t R
    t = 0.02
    caffe_value = (2 + 3 + 3) / 6 + t * 3 / 3
    assert ours.item() == pytest.approx(caffe_value, abs=1e-6)  # by value, alpha = t / 2
    # the layer's gradient for b_0 at t = 0.01: pairs (b_i - b_j) / (n (n - 1)) with sign + for
    # the similar pair, - for the active dissimilar one: [1, -1] / 6 - [1, 0] / 6 = [0, -1/6];
    # regulariser t / n * (+1 at 1.5, -1 at 0.5) = [0.01 / 3, -0.01 / 3]
    t = 0.01
    caffe_grad_b0 = torch.tensor([t / 3, -1 / 6 - t / 3])
    ours = DSHLoss(margin=4.0, alpha=t)(b, labels, torch.arange(3))
    ours.backward()
    # ours at alpha = t: [2t / 3, -1/3 - 2t / 3], twice the layer's: the same direction
    assert b.grad[0].tolist() == pytest.approx([2 * t / 3, -1 / 3 - 2 * t / 3], abs=1e-6)
    assert b.grad[0].tolist() == pytest.approx((2 * caffe_grad_b0).tolist(), abs=1e-6)


def test_dsh_loss_gradient_is_correct():
    torch.manual_seed(0)
    b = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 0, 2, 1])
    # alpha = 0 keeps the loss smooth away from the margin kink, where gradcheck is meaningful
    loss = DSHLoss(margin=8.0, alpha=0.0)
    assert torch.autograd.gradcheck(lambda x: loss(x, labels, torch.arange(5)), (b,))


def test_multilabel_similarity_is_shared_label():
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 1]])
    assert pairwise_similarity(labels).tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]


def test_dsh_learns_codes_that_separate_classes(digits_small):
    X, y = digits_small
    hasher = create_hasher(
        "dsh", n_bits=16, epochs=40, lr=3e-3, lr_schedule="constant", random_state=0, verbose=False
    ).fit(X, y)
    assert hasher.loss_history_[-1] < hasher.loss_history_[0] / 2
    bits = hasher.transform(X) >= 0
    same = y[:, None] == y[None, :]
    distances = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    # on training data, same-class codes end up much closer than different-class codes
    assert distances[same].mean() + 3 < distances[~same].mean()


def test_dsh_does_not_touch_global_torch_rng(digits_small):
    X, y = digits_small
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    create_hasher("dsh", n_bits=8, epochs=1, random_state=0, verbose=False).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())
