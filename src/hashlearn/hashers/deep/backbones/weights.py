"""Weights from local state-dict files, checked key by key against the network; nothing is
downloaded and nothing is unpickled.

The functions live in :mod:`hashlearn.features.weights`, since the pretrained-network feature
extractors read the same files; the backbones use them from here."""

from hashlearn.features.weights import WEIGHT_SUFFIXES, load_state_dict_file, load_weights

__all__ = ["WEIGHT_SUFFIXES", "load_state_dict_file", "load_weights"]
