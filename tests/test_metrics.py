import numpy as np
import pytest
import scipy.linalg

from metrics.fid import fid_from_features, frechet_distance, gaussian_stats
from metrics.kid import kid, mmd2_unbiased
from metrics.prdc import density_coverage, precision_recall


def _spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_fid_of_a_set_with_itself_is_zero():
    f = np.random.default_rng(0).normal(size=(2000, 16))
    assert abs(fid_from_features(f, f)) < 1e-8


@pytest.mark.parametrize("d", [2, 16, 64])
def test_frechet_distance_matches_the_closed_form(d):
    rng = np.random.default_rng(d)
    mu1, mu2, s1, s2 = rng.normal(size=d), rng.normal(size=d), _spd(rng, d), _spd(rng, d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_commuting_covariances():
    """Diagonal covariances: tr((S1 S2)^1/2) = sum sqrt(a_i b_i), so FID = sum (sqrt a - sqrt b)^2 + ||dmu||^2."""
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu = np.array([1.0, 0.0, 0.0])
    assert frechet_distance(mu, np.diag(a), 0 * mu, np.diag(b)) == pytest.approx(1 + 1 + 1, abs=1e-12)


def test_frechet_distance_rejects_nan():
    with pytest.raises(ValueError):
        frechet_distance(np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2))


def test_gaussian_stats_are_float64_and_unbiased():
    f = np.random.default_rng(1).normal(size=(500, 3)).astype(np.float32)
    mu, s = gaussian_stats(f)
    assert mu.dtype == np.float64 and s.dtype == np.float64
    np.testing.assert_allclose(s, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-12)


def test_precision_recall_identical_and_disjoint():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 8))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    far = real + 1000.0
    assert precision_recall(real, far) == (0.0, 0.0)
    d, c = density_coverage(real, real.copy(), k=5)
    assert c == 1.0 and d == pytest.approx(6 / 5)  # each point lies in its own ball and in k others: (k+1)/k
    d, c = density_coverage(real, rng.normal(size=(400, 8)), k=5)
    assert d == pytest.approx(1.0, abs=0.15) and c > 0.9  # same distribution: E[density] = 1
    assert density_coverage(real, far) == (0.0, 0.0)


def test_recall_drops_when_samples_cover_half_the_data():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(1000, 2))
    half = real[real[:, 0] > 0]
    precision, recall = precision_recall(real, half)
    assert precision == 1.0 and recall < 0.75


def test_kid():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3000, 10))
    mean, std = kid(x, x.copy(), subsets=10, subset_size=500)
    assert abs(mean) < 3 * std + 1e-3
    shifted, _ = kid(x, x + 0.5, subsets=10, subset_size=500)
    assert shifted > 10 * abs(mean) and shifted > 0.01
    # unbiased estimator: the expected value for two samples of one distribution is 0
    vals = [mmd2_unbiased(rng.normal(size=(200, 4)), rng.normal(size=(200, 4))) for _ in range(200)]
    assert abs(np.mean(vals)) < 3 * np.std(vals) / np.sqrt(len(vals))


def test_fid_inception_architecture_matches_the_tf_graph_layout():
    """Without the weights (not downloadable here) check what can be checked: the state dict has
    torchvision's Inception-v3 keys and shapes (which pytorch-fid's file fills), pool3 is 2048-d,
    and the patched pooling branches differ from torchvision's."""
    import torch
    from torchvision.models.inception import Inception3

    from metrics import inception, inception_net

    net = inception_net.fid_inception_v3()
    ref = Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    assert {k: v.shape for k, v in net.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    x = torch.rand(2, 1, 28, 28).expand(-1, 3, -1, -1)
    assert inception.pool3(net, x).shape == (2, 2048)
    ref.load_state_dict(net.state_dict())
    ref.eval()
    with torch.no_grad():
        h = torch.randn(1, 1280, 8, 8)
        assert not torch.allclose(net.Mixed_7b(h), ref.Mixed_7b(h))  # count_include_pad=False
        h = torch.randn(1, 2048, 8, 8)
        assert not torch.allclose(net.Mixed_7c(h), ref.Mixed_7c(h))  # max pool


def test_missing_inception_weights_is_a_one_line_error(tmp_path):
    from tests.conftest import assert_user_error, run

    np.savez(tmp_path / "s.npz", images=np.zeros((10, 28, 28), np.uint8))
    proc = run("evaluate.py", "--student_name", "x", "--samples", tmp_path / "s.npz", "--feature_net", "inception",
               "--inception_weights", tmp_path / "none.pth", cwd=tmp_path)
    assert_user_error(proc, "FID Inception weights not found", "pytorch-fid")
