"""The matting chain: the model and where it looks (segment, focus, gate), smoothing over time (smooth), the
edge (refine, regions, kernels) and the composite, joined in chain.py."""
