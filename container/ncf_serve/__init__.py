"""Inference server for the NCF model: SageMaker's bring-your-own-container contract.

Self-contained on purpose: the image holds only this directory and the model, so nothing here imports
`ncf_tui`.
"""
