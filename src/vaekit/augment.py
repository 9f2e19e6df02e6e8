"""Random affine augmentation of image batches, drawn afresh for every training batch.

An autoencoder trained on slightly rotated and shifted copies of its images must give such
copies nearby codes, so the images of one class lie closer together. Guo et al. (2018, "Deep
Embedded Clustering with Data Augmentation") found this lifts k-means on an autoencoder's code;
their ranges, ±10° and ±10% of the side, are the ones used here. The model still reconstructs
what it was given: the target of each batch is the augmented batch itself. Validation rows are
never augmented, so the validation loss stays a measure on the data as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("affine",)


@dataclass(frozen=True, eq=False)
class RandomAffine:
    """Rotate each image by U(-degrees, degrees) and shift it by U(-shift, shift) of its side.

    Parameters
    ----------
    image_shape : tuple of int
        ``(c, h, w)`` of one image; batches may come flattened, as an MLP takes them.
    degrees, shift : float
        Largest rotation in degrees, and largest shift as a fraction of the height / width.
    mean, scale : Tensor or None
        The per-feature standardization the batches carry (a Gaussian model's ``mean_`` and
        ``scale_``): undone before the images move and redone after, so that each pixel keeps
        its own scaling. None for data in its own units.

    Pixels that enter from outside the image are 0 in data units (black), the background of
    MNIST-like images.
    """

    image_shape: tuple[int, int, int]
    degrees: float = 10.0
    shift: float = 0.1
    mean: torch.Tensor | None = None
    scale: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Transform a batch.

        Parameters
        ----------
        x : Tensor, shape (n, c, h, w) or (n, c·h·w)

        Returns
        -------
        Tensor, same shape as ``x``
            Bilinearly resampled. The draws come from torch's global RNG, which a checkpoint
            saves, so a resumed fit replays them exactly.
        """
        n = x.shape[0]
        images = x.reshape(n, *self.image_shape)
        if self.scale is not None and self.mean is not None:
            images = images * self.scale.view(self.image_shape) + self.mean.view(self.image_shape)
        draws = torch.rand(n, 3, device=x.device, dtype=x.dtype) * 2 - 1
        angle = draws[:, 0] * math.radians(self.degrees)
        # affine_grid's coordinates span [-1, 1] across the image: a shift by a fraction f of
        # the side is 2f there.
        tx, ty = (draws[:, 1:] * (2 * self.shift)).unbind(1)
        cos, sin = angle.cos(), angle.sin()
        # A rotation in pixels, written in affine_grid's coordinates, which scale x by 2 / w and
        # y by 2 / h: the off-diagonal terms carry h / w, or a non-square image is sheared.
        _, h, w = self.image_shape
        theta = torch.stack([cos, -sin * (h / w), tx, sin * (w / h), cos, ty], 1).view(n, 2, 3)
        grid = F.affine_grid(theta, [n, *self.image_shape], align_corners=False)
        moved = F.grid_sample(images, grid, padding_mode="zeros", align_corners=False)
        if self.scale is not None and self.mean is not None:
            moved = (moved - self.mean.view(self.image_shape)) / self.scale.view(self.image_shape)
        return moved.reshape(x.shape)
