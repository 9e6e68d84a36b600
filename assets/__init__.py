"""Bundled data: the sample pruned NCF checkpoint and its held-out pairs (shipped as ``ncf_tui.assets``)."""
