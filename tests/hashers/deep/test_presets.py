"""``preset="paper"``: the published settings of every deep method, by name, each cited."""

from typing import ClassVar

import pytest
from sklearn.base import clone

from hashlearn import create_hasher
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import get_hasher_class, list_hashers
from hashlearn.hashers.deep.base import DeepHasher
from hashlearn.hashers.deep.methods import DSH
from hashlearn.hashers.deep.presets import PRESETS, Preset, describe_presets, get_preset

PAPER_METHODS = (
    "dsh",
    "dpsh",
    "hashnet",
    "dsdh",
    "dch",
    "csq",
    "orthohash",
    "greedyhash",
    "dpn",
    "bihalf",
    "cibhash",
)


@pytest.mark.parametrize("name", PAPER_METHODS)
def test_paper_preset_sets_every_cited_setting_and_builds(name):
    preset = get_preset(get_hasher_class(name), "paper")
    hasher = create_hasher(name, n_bits=12, preset="paper")
    for key, value in preset.settings.items():
        assert getattr(hasher, key) == value, key
        if key == "loss_params":
            assert all(f"loss_params.{k}" in preset.sources for k in value), value
        else:
            assert key in preset.sources, key
    assert preset.notes  # says what is not taken (optimiser, network)
    # the settings are valid: the loss and the trainer's configuration build from them
    hasher._make_loss()
    hasher._trainer_config(resume=False)


def test_dsh_paper_preset_by_hand():
    hasher = create_hasher("dsh", n_bits=12, preset="paper")
    assert (hasher.lr, hasher.batch_size, hasher.epochs, hasher.weight_decay) == (
        1e-3,
        200,
        280,
        4e-3,
    )
    loss = hasher._make_loss()
    assert (loss.margin, loss.alpha) == (24.0, 0.01)  # bi_margin 24 at 12 bits, tradeoff 0.01
    # the defaults are untouched without a preset
    plain = create_hasher("dsh", n_bits=12)
    assert (plain.lr, plain.batch_size, plain.loss_params) == (3e-3, 128, None)


def test_method_defaults_fill_what_neither_the_caller_nor_the_preset_gives():
    """A method's measured defaults (DPSH: lr 1e-3) stand in for the signature's; an explicit
    argument or a preset's setting wins over them, and a clone keeps the value."""
    assert create_hasher("dpsh", n_bits=12).lr == 1e-3
    assert create_hasher("dsh", n_bits=12).lr == 3e-3
    assert create_hasher("dpsh", n_bits=12, lr=0.02).lr == 0.02
    assert create_hasher("dpsh", n_bits=12, preset="paper").lr == 0.05  # the authors' SGD rate
    hasher = create_hasher("dpsh", n_bits=12, epochs=3)
    twin = create_hasher("dpsh", **hasher.get_params())
    assert (twin.lr, twin.epochs, twin.lr_schedule) == (1e-3, 3, "cosine")
    assert create_hasher("dpsh", n_bits=12).epochs == 100


def test_a_preset_given_to_set_params_is_applied_as_the_constructor_applies_it():
    hasher = create_hasher("dpsh", n_bits=12)
    hasher.set_params(preset="paper", epochs=7)
    built = create_hasher("dpsh", n_bits=12, preset="paper", epochs=7)
    assert hasher.get_params() == built.get_params()
    assert (hasher.lr, hasher.epochs) == (0.05, 7)  # the authors' SGD rate; the given epochs
    with pytest.raises(InvalidInputError, match="'dsh' has no preset 'papr'"):
        create_hasher("dsh").set_params(preset="papr")


def test_orthohash_paper_preset_by_hand():
    """The five newer methods had no preset (issue 17): OrthoHash's is the README's CIFAR-10
    run of kamwoh/orthohash, its loss settings given explicitly, not left to the defaults."""
    hasher = create_hasher("orthohash", n_bits=16, preset="paper")
    assert (hasher.lr, hasher.batch_size, hasher.epochs, hasher.weight_decay) == (
        1e-4,
        64,
        100,
        5e-4,
    )
    # StepLR(step_size=int(100 * 0.8), gamma=0.1): the lr drops tenfold at epoch 80
    assert (hasher.lr_schedule, hasher.lr_step_size, hasher.lr_gamma) == ("step", 80, 0.1)
    loss = hasher._make_loss()
    assert (loss.scale, loss.margin, loss.lambda_q, loss.code_kind) == (8.0, 0.3, 0.0, "bernoulli")
    # an explicit loss parameter wins, the others stay the preset's
    merged = create_hasher("orthohash", n_bits=16, preset="paper", loss_params={"margin": 0.2})
    assert merged._make_loss().margin == 0.2 and merged._make_loss().scale == 8.0


def test_explicit_arguments_win_over_the_preset():
    hasher = create_hasher(
        "dsdh", n_bits=12, preset="paper", lr=3e-3, epochs=5, loss_params={"eta": 1.0}
    )
    assert (hasher.lr, hasher.epochs, hasher.batch_size) == (3e-3, 5, 128)
    # loss_params merge: the given entries over the preset's
    assert hasher.loss_params["eta"] == 1.0 and hasher.loss_params["memory_pairs"] is True
    assert hasher._make_loss().eta == 1.0
    # positional n_bits and an explicit value equal to the default both count as given
    direct = DSH(12, preset="paper", batch_size=128)
    assert (direct.n_bits, direct.batch_size, direct.epochs) == (12, 128, 280)
    # clone rebuilds the same hasher (every argument explicit, the preset changes nothing)
    assert clone(hasher).get_params() == hasher.get_params()


def test_unknown_preset_names_the_available_ones():
    with pytest.raises(InvalidInputError, match=r"'dsh' has no preset 'papers'; available: paper"):
        create_hasher("dsh", n_bits=12, preset="papers")

    class NoPresets(DeepHasher):
        name = "no-presets"
        loss_name = "dsh"

    with pytest.raises(InvalidInputError, match="available: none"):
        NoPresets(preset="paper")


def test_a_method_declares_its_own_presets():
    # the hook for methods defined outside hashers.deep.presets: a class attribute
    class Quick(DSH):
        presets: ClassVar[dict[str, Preset]] = {
            "quick": Preset({"epochs": 2, "lr": 3e-3}, {"epochs": "a test"}, "fast")
        }

    hasher = Quick(n_bits=8, preset="quick")
    assert (hasher.epochs, hasher.lr) == (2, 3e-3)
    assert describe_presets(Quick) == {
        "paper": get_preset(DSH, "paper").notes,  # the table's, under the class's name "dsh"
        "quick": "fast",
    }


def test_every_deep_method_is_known_to_the_preset_table_or_declares_its_own():
    deep = [n for n in list_hashers() if issubclass(get_hasher_class(n), DeepHasher)]
    assert set(PAPER_METHODS) <= set(deep)
    for name in deep:  # methods added later may have none yet: the error must still be clear
        cls = get_hasher_class(name)
        if name in PRESETS or cls.presets:
            assert describe_presets(cls)
