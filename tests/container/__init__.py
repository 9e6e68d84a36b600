"""Tests of container/ (the inference server, its Dockerfile) and buildspec.yml."""
