"""Bad image input to every generative estimator that models pixels: a ValueError naming the argument.

One property test over the family (gm-flow, gm-vae), each tried through every public entry (``log_ratio``,
``estimate``, ``fit``): intensities outside [0, 1], non-finite values and a wrong shape.
"""

import math

import pytest
import torch

from genmi import VAEMI, FlowMI

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL_VAE = dict(channels=(8, 16), hidden=64, decoder_hidden=64)
MODELS = {"gm-flow": lambda: FlowMI((1, 8, 8), (1, 8, 8)), "gm-vae": lambda: VAEMI((1, 8, 8), (1, 8, 8), **SMALL_VAE)}


@pytest.mark.parametrize("name", list(MODELS))
def test_pixel_models_refuse_bad_images(name):
    est = MODELS[name]()
    x = torch.rand(16, 1, 8, 8)
    for method in (est.log_ratio, est.estimate):
        with pytest.raises(ValueError, match=r"y must hold pixel intensities in \[0, 1\]"):
            method(x, x * 255)
    for low in (x - 1, x - 0.5):
        with pytest.raises(ValueError, match=r"x must hold pixel intensities in \[0, 1\]"):
            est.fit(low, x, steps=1, progress=False)
    with pytest.raises(ValueError, match="NaN or infinite"):
        est.fit(x, torch.full_like(x, math.inf), steps=1, progress=False)
    with pytest.raises(ValueError, match="NaN or infinite"):
        est.log_ratio(torch.full_like(x, math.nan), x)
    for wrong in (torch.rand(16, 64), torch.rand(16, 2, 8, 8)):
        with pytest.raises(ValueError, match="x must have shape"):
            est.estimate(wrong, x)
        with pytest.raises(ValueError, match="x must have shape"):
            est.log_ratio(wrong, x)
