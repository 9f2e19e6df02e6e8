"""vaekit: autoencoders and variational autoencoders, and what to do with what they learn."""

__version__ = "0.1.0"
