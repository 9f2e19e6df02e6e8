"""vaekit: autoencoders and variational autoencoders, and what to do with what they learn.

>>> from vaekit import VAE, load
>>> vae = VAE(latent_dim=16, random_state=0).fit(X_train)   # doctest: +SKIP
>>> Z = vae.transform(X_test)                                # μ(x), shape (n, 16)  # doctest: +SKIP
"""

__version__ = "0.1.0"

from .autoencoder import Autoencoder
from .errors import VaekitError
from .persistence import load_model as load
from .vae import VAE

__all__ = ["VAE", "Autoencoder", "VaekitError", "__version__", "load"]
