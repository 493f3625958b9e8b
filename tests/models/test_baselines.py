"""Random baselines on real models: EfficientNet-Lite0 with its bundled weights and a small timm
ResNet, at small image sizes on images of the bundled Kather sample."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from layergain.data import load_image_set
from layergain.errors import InputTypeError, InputValueError, ModelError
from layergain.features import extract_features, torch_threads
from layergain.features.images import load_rgb
from layergain.models import load_backbone
from layergain.models.baselines import (
    BASELINES,
    baseline_backbone,
    batch_norms,
    calibration_index,
    match_parameters,
    permute_parameters,
    recalibrate_batch_norms,
)

SIZE = 64  # px: small enough for a fast test, large enough for Lite0's 2 x 2 deepest maps
#: Two-sided tail probability per checked statistic of ``matched``: with about 200 tensors and two
#: statistics each, a correct implementation fails with probability about 400 * 1e-9.
TAIL = 1e-9


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on the shared 2-core machine two threads mostly wait for each other."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def image_set():
    return load_image_set()


@pytest.fixture(scope="module")
def index(image_set):
    return calibration_index(len(image_set), max_images=12)


@pytest.fixture(scope="module")
def images(image_set, index):
    """uint8 (12, 3, SIZE, SIZE): a seeded subset of the bundled sample, decoded as the extraction decodes."""
    return np.stack([load_rgb(image_set.paths[i], SIZE) for i in index]).transpose(0, 3, 1, 2)


@pytest.fixture(scope="module")
def lite0():
    return load_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def build(images):
    """Lite0 networks by (baseline, seed), each built once per module (tests only read them);
    ``"today"``: ``load_backbone(weights=None, seed=seed)`` as the extraction builds it today."""
    built = {}

    def get(baseline: str, seed: int):
        if (baseline, seed) not in built:
            if baseline == "today":
                built[baseline, seed] = load_backbone("efficientnet_lite0", weights=None, seed=seed)
            else:
                calibration = images if baseline == "bn-recalibrated" else None
                net = baseline_backbone("efficientnet_lite0", baseline, seed, images=calibration)
                built[baseline, seed] = net
        return built[baseline, seed]

    return get


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _bn_inputs(module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input of every batch norm in an eval-mode pass of ``x`` (forward pre-hooks)."""
    seen: dict[str, torch.Tensor] = {}
    norm = nn.modules.batchnorm._BatchNorm  # every batch norm class (1d/2d/3d, timm's BatchNormAct2d)
    named = {bn: name for name, bn in module.named_modules() if isinstance(bn, norm)}

    def keep(bn, args):
        seen[named[bn]] = args[0].clone()

    handles = [bn.register_forward_pre_hook(keep) for bn in named]
    try:
        with torch.no_grad():
            module.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return seen


def _normalised(images: np.ndarray, backbone) -> torch.Tensor:
    # the normalisation of layergain.features.extract.extract_features: (x - 255 mean) / (255 std)
    mean = torch.tensor(backbone.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(backbone.std).view(1, 3, 1, 1) * 255
    return (torch.from_numpy(images).float() - mean) / std


def _moments(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and population variance (ddof=0) over images and positions, in float64 numpy."""
    a = x.double().numpy()
    a = np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)
    return a.mean(axis=1), a.var(axis=1, ddof=0)


# ---------------------------------------------------------------------------------------------- default


def test_default_is_todays_random_network(build, seed):
    today, ours = build("today", seed), build("default", seed)
    assert ours.identity == today.identity and ours.init == today.init == f"random-{seed}"
    a, b = today.module.state_dict(), ours.module.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------------------------- permuted


def test_permuted_keeps_each_tensors_values_and_shuffles_them(lite0, build, seed):
    net = build("permuted", seed)
    before, after = _params(lite0.module), _params(net.module)
    assert before.keys() == after.keys()
    for name, w in before.items():
        assert torch.equal(w.flatten().sort().values, after[name].flatten().sort().values), name
        # a tensor with >= 16 distinct values is left unchanged by a random permutation with
        # probability <= 1/16!; smaller ones (none in Lite0's parameters) are not checked
        if w.unique().numel() >= 16:
            assert not torch.equal(w, after[name]), name
    _assert_initial_running_stats(net.module)
    assert net.init == f"random-{seed}" and lite0.weights_sha256 in net.identity


def _assert_initial_running_stats(module: nn.Module) -> None:
    for bn in batch_norms(module):
        assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
        assert int(bn.num_batches_tracked) == 0


# ---------------------------------------------------------------------------------------------- matched


def test_matched_keeps_each_tensors_mean_and_variance_within_sampling_error(lite0, build, seed):
    net = build("matched", seed)
    before, after = _params(lite0.module), _params(net.module)
    z = stats.norm.isf(TAIL / 2)
    checked = 0
    for name, w in before.items():
        w, d = w.double().flatten(), after[name].double().flatten()
        n, mu, sigma = w.numel(), float(w.mean()), float(w.std(correction=0))
        if n < 2 or sigma == 0:
            assert torch.equal(w, d), name
            continue
        # draws ~ N(mu, sigma^2) i.i.d.: their mean ~ N(mu, sigma^2 / n) and
        # n * (their population variance) / sigma^2 ~ chi2(n - 1) (Cochran's theorem)
        assert abs(float(d.mean()) - mu) <= z * sigma / np.sqrt(n), name
        q = n * float(d.var(correction=0)) / sigma**2
        assert stats.chi2.ppf(TAIL / 2, n - 1) <= q <= stats.chi2.isf(TAIL / 2, n - 1), name
        assert not torch.equal(w.sort().values, d.sort().values), name  # not a permutation of them
        checked += 1
    assert checked > 100  # Lite0: 147 tensors with more than one value
    _assert_initial_running_stats(net.module)


def test_one_valued_and_constant_tensors_are_left_as_they_are(seed):
    module = nn.Module()
    module.scalar = nn.Parameter(torch.tensor(0.7))
    module.single = nn.Parameter(torch.tensor([1.5]))
    module.constant = nn.Parameter(torch.full((4, 5), -0.25))
    module.spread = nn.Parameter(torch.arange(40.0))
    original = _params(module)
    for redraw in (permute_parameters, match_parameters):
        redraw(module, seed)
        for name in ("scalar", "single", "constant"):
            assert torch.equal(getattr(module, name), original[name]), (redraw.__name__, name)
        assert not torch.equal(module.spread, original["spread"])
        module.load_state_dict(original)


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    """A timm ResNet-10t state dict standing for pretrained weights (a random one: no download here)."""
    path = tmp_path_factory.mktemp("weights") / "resnet10t.pth"
    torch.save(load_backbone("timm:resnet10t", weights=None, seed=100).module.state_dict(), path)
    return path


@pytest.mark.parametrize("baseline", ["permuted", "matched"])
def test_redrawn_from_a_local_weights_file(resnet_file, baseline, seed):
    source = load_backbone("timm:resnet10t", weights=resnet_file)
    net = baseline_backbone("timm:resnet10t", baseline, seed, weights=resnet_file)
    assert source.weights_sha256 in net.identity and net.weights_source == f"{baseline}:{resnet_file}"
    original, redrawn = _params(source.module), _params(net.module)
    assert not torch.equal(original["conv1.0.weight"], redrawn["conv1.0.weight"])
    if baseline == "permuted":  # every tensor is checked on Lite0 above; here the first one
        w = original["conv1.0.weight"]
        assert torch.equal(w.flatten().sort().values, redrawn["conv1.0.weight"].flatten().sort().values)
    # the same seed: the same network; another seed: another one
    redraw = permute_parameters if baseline == "permuted" else match_parameters
    for s, same in ((seed, True), (seed + 1, False)):
        again = copy.deepcopy(source.module)
        redraw(again, s)
        assert torch.equal(again.conv1[0].weight, net.module.conv1[0].weight) is same
    other = baseline_backbone("timm:resnet10t", baseline, seed + 1, weights=resnet_file)
    assert net.identity != other.identity


# -------------------------------------------------------------------------------------- bn-recalibrated


def test_recalibrated_running_statistics_are_the_batch_norm_inputs_statistics(build, images, seed):
    net, default = build("bn-recalibrated", seed), build("today", seed)
    # the same weights as the default network of this seed; only the running statistics differ
    pa, pb = _params(default.module), _params(net.module)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    x = _normalised(images, net)
    inputs = _bn_inputs(net.module, x)
    bns = dict(net.module.named_modules())
    assert len(inputs) == len(batch_norms(net.module)) == 49
    for name, inp in inputs.items():
        mean, var = _moments(inp)
        bn = bns[name]
        # equal up to float32 rounding, which 49 layers accumulate to about 1e-5 relative (measured);
        # a mean is judged against its channel's standard deviation (some channels have mean ~1e-8)
        assert np.all(np.abs(bn.running_mean.double().numpy() - mean) <= 1e-4 * np.sqrt(var) + 1e-12), name
        np.testing.assert_allclose(bn.running_var.double().numpy(), var, rtol=1e-4, err_msg=name)
        assert int(bn.num_batches_tracked) == 1
    # the first batch norm's input comes before any batch norm: the default network's own, in eval
    first = _bn_inputs(default.module, x)["bn1"]
    mean, var = _moments(first)
    assert np.all(np.abs(net.module.bn1.running_mean.double().numpy() - mean) <= 1e-5 * np.sqrt(var))
    np.testing.assert_allclose(net.module.bn1.running_var.double().numpy(), var, rtol=1e-5)
    # and the default network's deeper batch norms were far from normalising their inputs
    deep_var = _moments(_bn_inputs(default.module, x)["bn2"])[1]
    assert not np.allclose(default.module.bn2.running_var.numpy(), deep_var, rtol=0.5)


def test_recalibration_sees_the_images_as_the_extraction_does(build, image_set, index):
    """The stem convolution's output, read by extract_features with ``avg`` and averaged over the
    images, is the recalibrated stem batch norm's running mean: same decoding, size, normalisation."""
    net = build("bn-recalibrated", 0)
    stem = load_backbone("efficientnet_lite0", weights=None, seed=0, layers=["conv_stem"])
    feats = extract_features(stem, image_set.subset(index), image_size=SIZE, readouts="avg", engine="eager")
    # every image has SIZE/2 x SIZE/2 positions, so the mean of per-image averages is the mean over all
    np.testing.assert_allclose(
        feats.features["conv_stem"].astype(np.float64).mean(axis=0), net.module.bn1.running_mean.numpy(),
        rtol=1e-4, atol=1e-5,
    )


def _layerwise_reference(module: nn.Module, x: torch.Tensor) -> None:
    """The slow, obvious recalibration: one eval pass per batch norm, in the order they run, each
    set to its input's mean and population variance (numpy float64) once those before it are set."""
    order: list[nn.Module] = []
    handles = [bn.register_forward_pre_hook(lambda m, a: order.append(m)) for bn in batch_norms(module)]
    with torch.no_grad():
        module.eval()(x)
    for h in handles:
        h.remove()
    for bn in order:
        captured = []
        h = bn.register_forward_pre_hook(lambda m, a: captured.append(a[0].clone()))
        with torch.no_grad():
            module(x)
        h.remove()
        mean, var = _moments(captured[0])
        bn.running_mean.copy_(torch.from_numpy(mean))
        bn.running_var.copy_(torch.from_numpy(var))


def test_recalibration_equals_the_slow_layerwise_reference(images, seed):
    small = images[:6, :, :32, :32].copy()  # 32 px crops of 6 images: 14 passes of resnet10t stay fast
    fast = baseline_backbone("timm:resnet10t", "bn-recalibrated", seed, images=small)
    slow = load_backbone("timm:resnet10t", weights=None, seed=seed)
    _layerwise_reference(slow.module, _normalised(small, slow))
    fast_bns, slow_bns = batch_norms(fast.module), batch_norms(slow.module)
    assert len(fast_bns) == len(slow_bns) == 14
    for f, s in zip(fast_bns, slow_bns):
        np.testing.assert_allclose(f.running_mean.numpy(), s.running_mean.numpy(), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(f.running_var.numpy(), s.running_var.numpy(), rtol=1e-4, atol=1e-9)


def test_recalibrated_identity_names_the_baseline_and_the_images(build, images):
    default, a, d = build("default", 2), build("bn-recalibrated", 2), build("bn-recalibrated", 1)
    b = baseline_backbone("efficientnet_lite0", "bn-recalibrated", 2, images=[images[:5], images[5:]])
    c = baseline_backbone("efficientnet_lite0", "bn-recalibrated", 2, images=images[1:])
    assert a.identity == b.identity  # the same images, in batches or not: the same network
    pairs = zip(batch_norms(a.module), batch_norms(b.module))
    assert all(torch.equal(x.running_var, y.running_var) for x, y in pairs)
    assert len({default.identity, a.identity, c.identity, d.identity}) == 4
    assert a.identity.startswith(default.identity + "|bn-recalibrated")
    assert (a.init, d.init) == ("random-2", "random-1")


def test_four_baselines_have_four_identities(build):
    nets = {b: build(b, 0) for b in BASELINES}
    assert len({net.identity for net in nets.values()}) == len(BASELINES)
    assert {net.init for net in nets.values()} == {"random-0"}


def test_calibration_index():
    assert np.array_equal(calibration_index(10, max_images=10), np.arange(10))
    sub = calibration_index(1000, max_images=50, seed=4)
    assert sub.size == 50 and np.array_equal(sub, np.unique(sub)) and sub.max() < 1000
    assert np.array_equal(sub, calibration_index(1000, max_images=50, seed=4))
    assert not np.array_equal(sub, calibration_index(1000, max_images=50, seed=5))


# ----------------------------------------------------------------------------------------------- errors


def test_bn_recalibrated_refuses_a_model_without_batch_norm(images):
    with pytest.raises(ModelError, match="no batch norm with running statistics.*use the `default` baseline"):
        baseline_backbone("timm:test_convnext", "bn-recalibrated", 0, images=images[:2])


def test_a_batch_norm_applied_twice_is_refused(images):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            return self.bn(self.conv(self.bn(x)))

    with pytest.raises(ModelError, match="batch norm 'bn' is applied more than once"):
        recalibrate_batch_norms(Twice(), torch.from_numpy(images[:2]), (0.5,) * 3, (0.2,) * 3)


def test_argument_errors(images, image_set):
    name = "efficientnet_lite0"
    with pytest.raises(InputValueError, match=r"`baseline` must be one of 'default', .*got 'shuffled'"):
        baseline_backbone(name, "shuffled", 0)
    with pytest.raises(InputValueError, match="`seed` must be >= 0, got -1"):
        baseline_backbone(name, "permuted", -1)
    with pytest.raises(InputValueError, match="re-estimates batch-norm statistics on images; pass `images`"):
        baseline_backbone(name, "bn-recalibrated", 0)
    with pytest.raises(InputValueError, match="only used by the `bn-recalibrated` baseline, got them for"):
        baseline_backbone(name, "matched", 0, images=images)
    with pytest.raises(InputTypeError, match="must be decoded images, got an ImageSet"):
        baseline_backbone(name, "bn-recalibrated", 0, images=image_set)
    with pytest.raises(InputTypeError, match="must be uint8 RGB.*got dtype torch.float32"):
        baseline_backbone(name, "bn-recalibrated", 0, images=images.astype(np.float32))
    with pytest.raises(InputValueError, match=r"\(n_images, 3, size, size\), got \(12, 64, 64, 3\).*permute"):
        baseline_backbone(name, "bn-recalibrated", 0, images=images.transpose(0, 2, 3, 1))
    with pytest.raises(InputValueError, match="differ in image size"):
        baseline_backbone(name, "bn-recalibrated", 0, images=[images, images[:, :, :32, :32]])
    with pytest.raises(InputValueError, match="holds 1 image; a variance needs at least 2"):
        baseline_backbone(name, "bn-recalibrated", 0, images=images[:1])
    with pytest.raises(InputValueError, match="`images` is empty"):
        baseline_backbone(name, "bn-recalibrated", 0, images=[])
