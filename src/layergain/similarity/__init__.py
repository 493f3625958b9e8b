"""Representation similarity between layers: CKA (linear, debiased, RBF), CCA, SVCCA, PWCCA.

Pure functions on arrays of shape (n_images, n_units) -- numpy arrays or torch tensors (torch is
never imported here; tensors on an accelerator stay there for the CKA products). Each returns a
float; :func:`cka_matrix`, :func:`layer_similarity` and :func:`study_similarity` return labelled
xarray objects.

- :func:`linear_cka`, :func:`debiased_cka`, :func:`rbf_cka`
- :func:`cca`, :func:`svcca`, :func:`pwcca`, :func:`canonical_correlations`
- :func:`cka_matrix`: every layer of one network against every layer of another
- :class:`StreamingCKA`, :class:`StreamingCKAMatrix`: the same over minibatches of images
- :func:`bootstrap_cka`: bootstrap draws that duplicated images do not inflate
- :func:`layer_similarity`: every per-layer measure of a run, with random-vs-random references
- :func:`study_similarity`: the similarity stage of a run, streamed from its cached features
"""

from __future__ import annotations

from layergain.similarity.bootstrap import bootstrap_cka
from layergain.similarity.cca import canonical_correlations, cca, pwcca, svcca
from layergain.similarity.cka import debiased_cka, linear_cka, rbf_cka
from layergain.similarity.inference import similarity_difference, study_similarity_inference
from layergain.similarity.matrix import cka_matrix
from layergain.similarity.measures import angular_shape_distance, mutual_knn_alignment, procrustes_distance, rsa
from layergain.similarity.streaming import StreamingCKA, StreamingCKAMatrix
from layergain.similarity.study import MEASURES, PAIR_SEPARATOR, layer_similarity, study_similarity

__all__ = [
    "MEASURES",
    "PAIR_SEPARATOR",
    "StreamingCKA",
    "StreamingCKAMatrix",
    "bootstrap_cka",
    "canonical_correlations",
    "cca",
    "cka_matrix",
    "debiased_cka",
    "layer_similarity",
    "linear_cka",
    "pwcca",
    "rbf_cka",
    "study_similarity",
    "svcca",
]
