import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from hashlearn.exceptions import InvalidInputError, NotFittedError, UnknownNameError
from hashlearn.hashers.deep.losses import (
    BitBalance,
    CombinedLoss,
    CSQLoss,
    DCHLoss,
    DeCov,
    DPSHLoss,
    DSDHLoss,
    DSHLoss,
    HashLoss,
    HashNetLoss,
    PairwiseQuantization,
    QuantizationL1,
    QuantizationL2,
    create_loss,
    hadamard_matrix,
    hash_centers,
    list_losses,
)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def arange(n: int) -> torch.Tensor:
    return torch.arange(n)


# ---------------------------------------------------------------- hand computations


def test_dpsh_within_batch_matches_hand_computation():
    u = torch.tensor([[1.0, 0.5], [1.0, 1.0]])
    # theta_12 = theta_21 = 1/2 (1 * 1 + 0.5 * 1) = 0.75, similar: softplus(0.75) - 0.75 each
    # b = sign(u) = [1, 1] for both: ||b - u||^2 = 0.25 and 0; eta = 0.1 -> 0.025
    # 2 ordered pairs: (2 * (softplus(0.75) - 0.75) + 0.025) / 2
    expected = (2 * (softplus(0.75) - 0.75) + 0.025) / 2
    loss = DPSHLoss(eta=0.1, memory=False, balance="batch")(u, torch.tensor([3, 3]), arange(2))
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    # the paper's balance scales the quantisation sum by (b - 1) / n_train = 1 / 5
    paper = DPSHLoss(eta=0.1, memory=False, balance="paper")
    with pytest.raises(NotFittedError, match="setup"):
        paper(u, torch.tensor([3, 3]), arange(2))
    paper.setup(5, 2, torch.tensor([3, 3, 1, 1, 2]), torch.Generator().manual_seed(0))
    expected = (2 * (softplus(0.75) - 0.75) + 0.1 * 0.25 / 5) / 2
    assert paper(u, torch.tensor([3, 3]), arange(2)).item() == pytest.approx(expected, abs=1e-6)


def test_dpsh_quantisation_weighs_as_in_the_paper_with_memory_or_paper_balance():
    # J / n_train^2 = mean pair likelihood + eta / n_train * mean quantisation error: the
    # quantisation share of a batch must be eta * mean_q / n_train, whichever pairs are used
    labels = torch.tensor([0, 0, 1, 1, 2])  # n_train = 5
    u = torch.tensor([[1.0, 0.5], [1.0, 1.0]])  # ||sign(u) - u||^2 = 0.25 and 0: mean_q 0.125
    batch_labels, batch = labels[:2], arange(2)

    def share(**params):
        with_eta, without = DPSHLoss(eta=10.0, **params), DPSHLoss(eta=0.0, **params)
        for loss in (with_eta, without):
            loss.setup(5, 2, labels, torch.Generator().manual_seed(0))
        return (with_eta(u, batch_labels, batch) - without(u, batch_labels, batch)).item()

    assert share(memory=False, balance="paper") == pytest.approx(10.0 * 0.125 / 5)  # the paper's
    assert share(memory=True) == pytest.approx(10.0 * 0.125 / 5)  # the authors' code's
    # in-batch without the scaling (the default): 10 * 0.25 / (b (b - 1)) = 1.25, that is
    # n_train / (b - 1) = 5 times the paper's share
    assert share(memory=False) == share(memory=False, balance="batch") == pytest.approx(1.25)
    with pytest.raises(InvalidInputError, match="balance"):
        DPSHLoss(balance="pairs")


def test_dpsh_pairs_the_batch_with_the_memory_of_all_training_outputs():
    loss = DPSHLoss(eta=0.1, memory=True)
    loss.setup(3, 2, torch.tensor([0, 0, 1]), torch.Generator().manual_seed(0))
    u = torch.tensor([[1.0, 0.5]])
    # the batch (sample 0) is written into the memory first; samples 1, 2 are still zeros:
    # theta_00 = 1/2 ||u||^2 = 0.625 (similar), theta_01 = theta_02 = 0 -> softplus(0) = log 2
    # quantisation ||[1, 1] - u||^2 = 0.25 -> 0.1 * 0.25; 1 x 3 pairs
    expected = (softplus(0.625) - 0.625 + 2 * math.log(2) + 0.025) / 3
    assert loss(u, torch.tensor([0]), torch.tensor([0])).item() == pytest.approx(expected, abs=1e-6)
    assert loss.memory[0].tolist() == [1.0, 0.5]
    assert loss.memory[1:].abs().sum() == 0
    # in eval mode nothing is written
    loss.eval()
    loss(torch.tensor([[5.0, 5.0]]), torch.tensor([0]), torch.tensor([1]))
    assert loss.memory[1].abs().sum() == 0


def test_hashnet_matches_hand_computation():
    # outputs are atanh of the wanted h so that h = tanh(beta z) with beta = 1 is exact
    h = torch.tensor([[0.5, 0.5], [0.5, 0.0], [-0.5, 0.5]])
    labels = torch.tensor([0, 0, 1])
    # alpha = 1: <h1,h2> = 0.25 (similar):     softplus(0.25) - 0.25
    #            <h1,h3> = 0    (dissimilar):  softplus(0) = log 2
    #            <h2,h3> = -0.25 (dissimilar): softplus(-0.25)
    # weights |S|/|S_1|, |S|/|S_0|, divided by |S|: mean over similar + mean over dissimilar
    expected = (softplus(0.25) - 0.25) + (math.log(2) + softplus(-0.25)) / 2
    loss = HashNetLoss(alpha=1.0)(torch.atanh(h), labels, arange(3))
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_hashnet_beta_follows_the_continuation_schedule():
    loss = HashNetLoss(alpha=1.0, gamma=0.005, step=200, power=0.5)
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 0, 1])
    for _ in range(3):
        loss(z, labels, arange(4))
    assert loss.iteration == 3  # one per training-mode forward call
    loss.eval()
    loss(z, labels, arange(4))
    assert loss.iteration == 3  # no counting outside training mode
    # beta = (1 + 0.005 t)^0.5 with t the iteration rounded down to a multiple of 200
    betas = []
    for iteration in range(0, 1001):
        loss.iteration = iteration
        betas.append(loss.beta)
    assert betas[0] == betas[199] == 1.0
    assert betas[200] == betas[399] == pytest.approx(math.sqrt(2.0))
    assert betas[1000] == pytest.approx(math.sqrt(6.0))
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(betas))
    # the counter travels with state_dict (checkpoints resume the schedule)
    loss.iteration = 321
    restored = HashNetLoss(alpha=1.0)
    restored.load_state_dict(loss.state_dict())
    assert restored.iteration == 321
    # a larger beta sharpens tanh(beta z): the loss sees outputs closer to +-1
    loss.iteration = 0
    low = loss(z, labels, arange(4))
    loss.iteration = 1000
    assert loss(z, labels, arange(4)).item() != pytest.approx(low.item())


def test_dch_matches_hand_computation():
    h = torch.tensor([[0.6, 0.8], [0.8, -0.6], [-0.6, -0.8]])
    labels = torch.tensor([0, 0, 1])
    gamma, lambda_q = 2.0, 0.5
    # K = 2, d = K/2 (1 - cos): d12 = 1 (cos 0), d13 = 2 (cos -1), d23 = 1 (cos 0)
    # similar (1,2): log(1 + d/gamma) = log 1.5; dissimilar: log(1 + gamma/d) = log 2, log 3
    pair = math.log(1.5) + (math.log(2.0) + math.log(3.0)) / 2
    # every |h| is (0.6, 0.8) or (0.8, 0.6): cos(|h|, 1) = 1.4 / sqrt 2, d = 1 - 1.4 / sqrt 2
    quantisation = math.log1p((1 - 1.4 / math.sqrt(2)) / gamma)
    loss = DCHLoss(gamma=gamma, lambda_q=lambda_q)(torch.atanh(h), labels, arange(3))
    assert loss.item() == pytest.approx(pair + lambda_q * quantisation, abs=1e-6)


def test_csq_matches_hand_computation():
    loss = CSQLoss(lambda_q=0.1)
    loss.setup(2, 2, torch.tensor([0, 1]), torch.Generator().manual_seed(0))
    # Hadamard centres of order 2: class 0 -> [1, 1], class 1 -> [1, -1]
    assert loss.centers.tolist() == [[1.0, 1.0], [1.0, -1.0]]
    a = 0.5 * math.log(3.0)  # (tanh(a) + 1) / 2 = sigmoid(2a) = 0.75, tanh(a) = 0.5
    z = torch.full((2, 2), a)
    # BCE per bit: -log 0.75 for the three bits whose target is 1, -log 0.25 for the last one
    central = (3 * -math.log(0.75) - math.log(0.25)) / 4
    quantisation = math.log(math.cosh(0.5 - 1.0))  # log cosh(|h| - 1), the same for every bit
    expected = central + 0.1 * quantisation
    assert loss(z, torch.tensor([0, 1]), arange(2)).item() == pytest.approx(expected, abs=1e-6)


def test_dsdh_forward_matches_hand_computation():
    loss = DSDHLoss(eta=2.0, memory_pairs=True)
    loss.setup(2, 2, torch.tensor([0, 1]), torch.Generator().manual_seed(0))
    loss.codes = torch.tensor([[1.0, -1.0], [1.0, 1.0]])
    u = torch.tensor([[0.5, -1.0]])
    # theta_00 = 1/2 (0.25 + 1) = 0.625 similar; theta_01 = 0 (memory of sample 1 is zero): log 2
    # quantisation against B (not sign(u)): ||[1, -1] - [0.5, -1]||^2 = 0.25, eta = 2; 2 pairs
    expected = (softplus(0.625) - 0.625 + math.log(2) + 2.0 * 0.25) / 2
    assert loss(u, torch.tensor([0]), torch.tensor([0])).item() == pytest.approx(expected, abs=1e-6)


def test_regularisers_match_hand_computation():
    h = torch.tensor([[0.5, -2.0], [1.0, 0.0]])
    no_labels, idx = torch.zeros(2, dtype=torch.int64), arange(2)
    # || |h| - 1 ||_1 per row: 0.5 + 1 = 1.5 and 0 + 1 = 1 -> mean 1.25, weight 2
    assert QuantizationL1(2.0)(h, no_labels, idx).item() == pytest.approx(2.5)
    # || |h| - 1 ||^2 per row: 0.25 + 1 and 0 + 1 -> mean 1.125
    assert QuantizationL2(2.0)(h, no_labels, idx).item() == pytest.approx(2.25)
    # b = sign(h) = [[1, -1], [1, 1]]; h h^T = [[4.25, 0.5], [0.5, 1]], b b^T = [[2, 0], [0, 2]]
    # (difference / K)^2 = 1.125^2, 0.25^2, 0.25^2, 0.5^2 -> mean 1.640625 / 4
    assert PairwiseQuantization(1.0)(h, no_labels, idx).item() == pytest.approx(1.640625 / 4)


def test_bit_balance_and_decov_match_hand_computation():
    idx, labels = arange(3), torch.zeros(3, dtype=torch.int64)
    h = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-0.5, 1.0]])
    # bit means 0.5 and 1/3 -> 0.25 + 1/9
    assert BitBalance(1.0)(h, labels, idx).item() == pytest.approx(0.25 + 1 / 9)
    h = torch.tensor([[1.0, 2.0], [3.0, 0.0], [2.0, 1.0]])
    # means (2, 1); centred rows (-1, 1), (1, -1), (0, 0); C = 1/3 [[2, -2], [-2, 2]]
    # 1/2 (||C||_F^2 - ||diag C||^2) = 1/2 * 2 * (2/3)^2 = 4/9
    assert DeCov(1.0)(h, labels, idx).item() == pytest.approx(4 / 9)
    # tanh undoes atanh: h / 4 scales C by 1/16 and the penalty by 1/256; weight 3
    assert DeCov(3.0, activation="tanh")(torch.atanh(h / 4), labels, idx).item() == pytest.approx(
        3 * 4 / 9 / 256
    )


def test_dsh_loss_keeps_its_definition():
    b = torch.tensor([[1.0, -1.0], [0.5, 0.5], [-1.0, 0.0]])
    # see tests/test_dsh.py: pair terms 1.25, 0, 0.75 and regulariser 0.1, 0.1, 0.2 over 3 pairs
    loss = DSHLoss(margin=4.0, alpha=0.1)(b, torch.tensor([0, 0, 1]), arange(3))
    assert loss.item() == pytest.approx(0.8, abs=1e-6)


# ---------------------------------------------------------------- hash centres


def test_hadamard_centres_are_mutually_half_the_code_length_apart():
    for n_bits in (4, 16, 64):
        H = hadamard_matrix(n_bits)
        distances = (n_bits - H @ H.T) / 2
        off = ~torch.eye(n_bits, dtype=torch.bool)
        assert torch.all(distances[off] == n_bits / 2)
    centers = hash_centers(20, 16, torch.Generator().manual_seed(0))  # 16 < 20 <= 32: [H; -H]
    distances = (16 - centers @ centers.T) / 2
    assert distances[~torch.eye(20, dtype=torch.bool)].min() == 8


def test_random_centres_are_deterministic_for_a_seed_and_well_spread():
    draw = lambda seed: hash_centers(10, 12, torch.Generator().manual_seed(seed))  # noqa: E731
    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))
    centers = draw(0)
    assert set(centers.unique().tolist()) == {-1.0, 1.0}
    distances = (12 - centers @ centers.T) / 2
    assert distances[~torch.eye(10, dtype=torch.bool)].min() >= 4


def test_csq_multilabel_target_is_sign_of_summed_centres_with_seeded_ties():
    labels = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)

    def targets(seed: int) -> torch.Tensor:
        loss = CSQLoss()
        loss.setup(3, 4, labels, torch.Generator().manual_seed(seed))
        return loss.targets, loss.centers

    t0, centers = targets(0)
    assert torch.equal(t0[0], centers[0])
    assert torch.equal(t0[2], torch.sign(centers.sum(0)))  # 3 centres: never a tie
    ties = centers[0] + centers[1] == 0
    agree = t0[1][~ties] == torch.sign(centers[0] + centers[1])[~ties]
    assert agree.all() and ties.any()
    assert torch.equal(t0, targets(0)[0])


def test_hadamard_falls_back_to_random_centres_when_it_cannot_serve():
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    too_many = hash_centers(40, 16, gen())  # 40 > 2 * 16 classes
    assert torch.equal(too_many, hash_centers(40, 16, gen(), kind="random"))
    not_power_of_two = hash_centers(5, 12, gen())
    assert torch.equal(not_power_of_two, hash_centers(5, 12, gen(), kind="random"))


CLASS_LABELS_ONLY = {"greedyhash"}  # its paper trains a softmax classifier on the codes


@pytest.mark.parametrize(
    "name",
    # unsupervised losses (BiHalf, CIBHash) read no labels: their own tests cover them
    sorted(n for n in set(list_losses()) - CLASS_LABELS_ONLY if create_loss(n, 8).supervised),
)
def test_every_loss_accepts_multilabel_indicators(name):
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=torch.bool)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = create_loss(name, 8)
    loss.setup(4, 8, labels, torch.Generator().manual_seed(0))
    value = loss(z, labels, arange(4))
    value.backward()
    loss.on_epoch_end(0)
    assert torch.isfinite(value) and torch.isfinite(z.grad).all()


# ---------------------------------------------------------------- gradients


def _ready(loss: HashLoss, labels: torch.Tensor, n_bits: int, outputs: torch.Tensor) -> HashLoss:
    """Set up per-dataset state, fill memories in training mode, then freeze it (eval mode)."""
    loss.setup(len(labels), n_bits, labels, torch.Generator().manual_seed(0))
    loss(outputs.detach().float(), labels, arange(len(labels)))
    return loss.eval()


GRAD_CASES = {
    "dsh": lambda: DSHLoss(margin=20.0, alpha=0.0),
    "dpsh": lambda: DPSHLoss(eta=0.1, memory=True),
    "dpsh-batch": lambda: DPSHLoss(eta=0.1, memory=False),
    "dpsh-paper-balance": lambda: DPSHLoss(eta=0.1, memory=False, balance="paper"),
    "hashnet": lambda: HashNetLoss(beta0=1.5),
    "dsdh": lambda: DSDHLoss(eta=5.0),
    "dch": lambda: DCHLoss(gamma=2.0, lambda_q=0.5),
    "csq": lambda: CSQLoss(lambda_q=0.5),
    "quantization-l1": lambda: QuantizationL1(0.7),
    "quantization-l2": lambda: QuantizationL2(0.7, activation="tanh"),
    "pairwise-quantization": lambda: PairwiseQuantization(0.7),
    "bit-balance": lambda: BitBalance(0.7),
    "decov": lambda: DeCov(0.7),
    "combined": lambda: CombinedLoss(DCHLoss(), [BitBalance(0.1), QuantizationL2(0.1)]),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_gradient_is_correct(name):
    z = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    z.requires_grad_(True)
    labels = torch.tensor([0, 1, 0, 2, 1, 2])
    # memory losses pair with a half-trained memory (the other samples) and stay in eval mode
    loss = _ready(GRAD_CASES[name](), labels, 4, z + 0.3)
    assert torch.autograd.gradcheck(lambda x: loss(x, labels, arange(6)), (z,))


# ---------------------------------------------------------------- state


def test_dsdh_epoch_end_updates_classifier_in_closed_form_and_decreases_its_objective():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (40,), generator=gen)
    loss = DSDHLoss(mu=1.0, nu=0.1, eta=2.0, dcc_iter=2)
    loss.setup(40, 6, labels, torch.Generator().manual_seed(0))
    outputs = torch.randn(40, 6, generator=gen) + 2.0 * torch.randn(3, 6, generator=gen)[labels]
    loss(outputs, labels, arange(40))  # fills the memory U
    values = [loss.discrete_objective()]
    for epoch in range(3):
        loss.on_epoch_end(epoch)
        values.append(loss.discrete_objective())
    assert values[1] < values[0]
    assert all(b <= a + 1e-4 for a, b in itertools.pairwise(values))
    # W is the ridge solution for the B it was computed from (B before the last code update)
    B = loss.codes.numpy().astype(np.float64)
    Y = np.eye(3)[labels.numpy()]
    loss._update_classifier()
    W = np.linalg.solve(B.T @ B + 0.1 * np.eye(6), B.T @ Y)
    np.testing.assert_allclose(loss.classifier.numpy(), W, atol=1e-4)
    # the codes have moved from their random start towards sign(U)
    agreement = (loss.codes == torch.where(outputs >= 0, 1.0, -1.0)).float().mean()
    assert agreement > 0.8


@pytest.mark.parametrize("name", ["dpsh", "dsdh", "csq", "orthohash", "greedyhash", "dpn"])
def test_loss_state_round_trips_through_state_dict(name):
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    trained = create_loss(name, 8)
    trained.setup(8, 8, labels, torch.Generator().manual_seed(0))
    trained(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)), labels, arange(8))
    trained.on_epoch_end(0)
    fresh = create_loss(name, 8)
    fresh.setup(8, 8, labels, torch.Generator().manual_seed(5))  # as a resumed run does
    fresh.load_state_dict(trained.state_dict())
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_losses_with_state_refuse_to_run_before_setup():
    z, labels = torch.randn(3, 4), torch.tensor([0, 1, 0])
    for loss in (DPSHLoss(memory=True), DSDHLoss(), CSQLoss()):
        with pytest.raises(NotFittedError, match="setup"):
            loss(z, labels, arange(3))
    with pytest.raises(NotFittedError):
        DSDHLoss().on_epoch_end(0)


def test_combined_loss_adds_regularisers_and_forwards_setup():
    labels = torch.tensor([0, 1, 0])
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    main, balance = CSQLoss(), BitBalance(0.5)
    combined = CombinedLoss(main, [balance])
    assert isinstance(combined, HashLoss)
    combined.setup(3, 4, labels, torch.Generator().manual_seed(0))
    assert main.targets is not None
    expected = main(z, labels, arange(3)) + balance(z, labels, arange(3))
    assert combined(z, labels, arange(3)).item() == pytest.approx(expected.item())
    with pytest.raises(InvalidInputError):
        CombinedLoss(main, [nn.MSELoss()])


def test_factory_builds_losses_with_paper_defaults():
    assert list_losses() == [
        "bihalf",
        "cibhash",
        "csq",
        "dch",
        "dpn",
        "dpsh",
        "dsdh",
        "dsh",
        "greedyhash",
        "hashnet",
        "orthohash",
    ]
    assert create_loss("dsh", 16).margin == 32.0
    assert create_loss("dsh", 16, margin=5).margin == 5.0
    assert create_loss("hashnet", 16).alpha == pytest.approx(10 / 16)
    assert create_loss("dsdh", 16).eta == 1.0
    assert create_loss("dpsh", 8).eta == 0.1
    assert isinstance(create_loss("csq", 8, centers="random"), CSQLoss)
    with pytest.raises(UnknownNameError, match="dpsh"):
        create_loss("dhn", 16)
    with pytest.raises(InvalidInputError, match="lambda_q"):
        create_loss("dpsh", 16, lambda_q=1.0)
    with pytest.raises(InvalidInputError, match="-1"):
        DPSHLoss(eta=-1)
    with pytest.raises(InvalidInputError, match="sobol"):
        CSQLoss(centers="sobol")


def test_bad_batches_are_rejected():
    with pytest.raises(InvalidInputError, match="at least 2"):
        HashNetLoss()(torch.randn(1, 4), torch.tensor([0]), arange(1))
    with pytest.raises(InvalidInputError, match="shape"):
        DCHLoss()(torch.randn(4), torch.tensor([0, 1, 0, 1]), arange(4))
    with pytest.raises(InvalidInputError, match="labels"):
        DSHLoss(margin=4.0)(torch.randn(3, 4), torch.tensor([0, 1]), arange(3))


# ---------------------------------------------------------------- training on real digits


@pytest.fixture(scope="module")
def digits200():
    data = load_digits()
    X = torch.tensor(data.data[:200], dtype=torch.float32)
    X = (X - X.mean(0)) / (X.std(0) + 1e-3)
    return X, torch.tensor(data.target[:200])


TRAIN_CASES = {
    "dsh": lambda: create_loss("dsh", 16),
    "dpsh": lambda: create_loss("dpsh", 16),
    "hashnet": lambda: create_loss("hashnet", 16),
    "dsdh": lambda: create_loss("dsdh", 16),
    "dch": lambda: create_loss("dch", 16),
    "csq": lambda: create_loss("csq", 16),
    "orthohash": lambda: create_loss("orthohash", 16),
    "greedyhash": lambda: create_loss("greedyhash", 16),
    "dpn": lambda: create_loss("dpn", 16),
    "csq+regularisers": lambda: CombinedLoss(
        create_loss("csq", 16), [BitBalance(0.1, activation="tanh"), DeCov(0.1, activation="tanh")]
    ),
}


def _value(loss: HashLoss, model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """The loss on all 200 samples with an up-to-date memory, without changing the loss's state."""
    with torch.no_grad():
        loss.train()
        loss(model(X), y, arange(len(X)))  # refresh memories
        loss.eval()
        value = float(loss(model(X), y, arange(len(X))))
    loss.train()
    return value


@pytest.mark.parametrize("name", list(TRAIN_CASES))
def test_loss_trains_a_linear_hash_on_real_digits(name, digits200):
    X, y = digits200
    torch.manual_seed(0)
    model = nn.Linear(64, 16)
    loss = TRAIN_CASES[name]()
    loss.setup(len(X), 16, y, torch.Generator().manual_seed(0))
    # as the trainer does, parameters of the loss (GreedyHash's classifier) train with the model
    optimizer = torch.optim.Adam([*model.parameters(), *loss.parameters()], lr=1e-2)
    order_rng = torch.Generator().manual_seed(0)
    before = _value(loss, model, X, y)
    for epoch in range(10):  # 10 epochs x 4 batches of 50
        order = torch.randperm(len(X), generator=order_rng)
        for begin in range(0, len(X), 50):
            idx = order[begin : begin + 50]
            value = loss(model(X[idx]), y[idx], idx)
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        loss.on_epoch_end(epoch)
    after = _value(loss, model, X, y)
    assert after < 0.9 * before
    with torch.no_grad():
        bits = model(X) >= 0
    distances = (bits[:, None, :] != bits[None, :, :]).sum(-1).float()
    same = y[:, None] == y[None, :]
    # codes of the same digit end up closer than codes of different digits
    assert distances[same].mean() + 2 < distances[~same].mean()
