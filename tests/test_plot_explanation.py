from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import digitrec

pytest.importorskip("matplotlib")
import matplotlib

matplotlib.use("Agg")
from matplotlib.colorbar import Colorbar
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from digitrec.plotting import plot_explanation


def _attributions() -> torch.Tensor:
    scores = torch.zeros(1, 28, 28)
    scores[0, 10:14, 10:14] = 0.5
    scores[0, 20, 5] = -2.0
    return scores


def test_overlay_on_a_grey_image_with_symmetric_colorbar(
    mnist_test: digitrec.ImageDataset, tmp_path: Path
) -> None:
    image, label = mnist_test[0]
    figure = plot_explanation(image, _attributions(), title=f"label {label}")
    assert isinstance(figure, Figure)
    axes, colorbar_axes = figure.axes
    assert axes.get_title() == "label 7"
    base, overlay = axes.get_images()
    assert isinstance(base, AxesImage)
    assert base.get_cmap().name == "gray"
    assert base.get_clim() == (0.0, 1.0)
    np.testing.assert_allclose(np.asarray(base.get_array()), image[0].numpy() / 255.0)
    assert overlay.get_cmap().name == "RdBu_r"
    assert overlay.get_clim() == (-2.0, 2.0)  # symmetric around zero
    alpha = overlay.get_alpha()
    assert alpha is not None
    assert 0 < alpha < 1
    colorbar = overlay.colorbar
    assert isinstance(colorbar, Colorbar)
    assert colorbar.ax is colorbar_axes
    assert colorbar_axes.get_ylabel() == "attribution"
    figure.savefig(tmp_path / "explanation.png")
    assert (tmp_path / "explanation.png").stat().st_size > 1000


def test_draws_into_given_axes_and_sums_channels() -> None:
    figure = Figure()
    left, right = figure.subplots(1, 2)
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    scores = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(1))
    returned = plot_explanation(image.permute(1, 2, 0).numpy(), scores, ax=right, cmap="PiYG")
    assert returned is figure
    assert left.get_images() == []
    base, overlay = right.get_images()
    np.testing.assert_allclose(base.get_array(), image.mean(dim=0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(overlay.get_array(), scores.sum(dim=0).numpy(), rtol=1e-5)
    limit = float(scores.sum(dim=0).abs().max())
    np.testing.assert_allclose(overlay.get_clim(), (-limit, limit))
    assert overlay.get_cmap().name == "PiYG"
    assert len(figure.axes) == 3  # two panels and the colour bar


def test_all_zero_attributions_still_get_a_colour_range() -> None:
    figure = plot_explanation(np.zeros((28, 28), dtype=np.uint8), np.zeros((28, 28)))
    assert figure.axes[0].get_images()[1].get_clim() == (-1.0, 1.0)


def test_bad_arguments() -> None:
    image = torch.zeros(1, 28, 28)
    with pytest.raises(digitrec.InvalidInputError, match=r"\(28, 28\).*got \(14, 14\)"):
        plot_explanation(image, torch.zeros(14, 14))
    with pytest.raises(digitrec.InvalidInputError, match="finite"):
        plot_explanation(image, torch.full((28, 28), float("nan")))
    with pytest.raises(digitrec.InvalidTypeError, match="attributions"):
        plot_explanation(image, "map")
    with pytest.raises(digitrec.InvalidInputError, match=r"\[0, 1\]"):
        plot_explanation(torch.full((28, 28), 3.0), torch.zeros(28, 28))
